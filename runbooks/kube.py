"""Kubernetes actions through the official client: what kubectl scale,
rollout restart, rollout undo and get pods send, and nothing more.

The cluster is the one of RUNBOOK_KUBECONFIG (and RUNBOOK_KUBE_CONTEXT), or
the in-cluster service account when it is empty. Every call carries
RUNBOOK_ACTION_TIMEOUT_SECONDS and every target is re-checked against the
allowlist right before the call.
"""

from __future__ import annotations

from contextlib import contextmanager

from django.conf import settings

from .actions import ActionError, Reporter, check_kube_target, now_iso

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
REVISION = "deployment.kubernetes.io/revision"


@contextmanager
def _apps_api():
    from kubernetes import client
    from kubernetes import config as kube_config
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    if settings.RUNBOOK_KUBECONFIG:
        api_client = kube_config.new_client_from_config(
            config_file=settings.RUNBOOK_KUBECONFIG, context=settings.RUNBOOK_KUBE_CONTEXT or None
        )
    else:
        configuration = client.Configuration()
        try:
            kube_config.load_incluster_config(client_configuration=configuration)
        except kube_config.ConfigException as exc:
            raise ActionError(f"RUNBOOK_KUBECONFIG is empty and this is not a cluster: {exc}") from exc
        api_client = client.ApiClient(configuration)
    try:
        yield client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    except ApiException as exc:
        if exc.status == 404:
            raise ActionError("not found in the cluster") from exc
        if exc.status in (401, 403):
            raise ActionError(f"the Kubernetes API refused access (HTTP {exc.status})") from exc
        raise ActionError(f"the Kubernetes API answered HTTP {exc.status}: {exc.reason}") from exc
    except HTTPError as exc:
        raise ActionError(f"cannot reach the Kubernetes API: {type(exc).__name__}") from exc
    except (ValueError, AttributeError, TypeError) as exc:
        raise ActionError(f"malformed answer from the Kubernetes API: {exc}") from exc
    finally:
        api_client.close()


def _target(params: dict) -> tuple[str, str]:
    namespace, name = params["namespace"], params["deployment"]
    check_kube_target(namespace, name)
    return namespace, name


def _timeout() -> float:
    return float(settings.RUNBOOK_ACTION_TIMEOUT_SECONDS)


def _replicas(apps, name: str, namespace: str) -> int:
    scale = apps.read_namespaced_deployment_scale(name, namespace, _request_timeout=_timeout())
    return scale.spec.replicas if scale.spec and scale.spec.replicas is not None else 0


# --- scale ----------------------------------------------------------------------


def preview_scale(params: dict) -> str:
    namespace, name = _target(params)
    with _apps_api() as (apps, _core):
        current = _replicas(apps, name, namespace)
    return f"deployment {namespace}/{name}: replicas {current} → {params['replicas']}"


def scale_applied(params: dict) -> bool:
    namespace, name = _target(params)
    with _apps_api() as (apps, _core):
        return _replicas(apps, name, namespace) == params["replicas"]


def scale(params: dict, report: Reporter) -> str:
    namespace, name = _target(params)
    with _apps_api() as (apps, _core):
        before = _replicas(apps, name, namespace)
        report(f"{namespace}/{name}: {before} replicas", progress=20)
        apps.patch_namespaced_deployment_scale(
            name, namespace, {"spec": {"replicas": params["replicas"]}}, _request_timeout=_timeout()
        )
    report(f"scaled {namespace}/{name}: replicas {before} → {params['replicas']}", progress=100)
    return f"replicas {before} → {params['replicas']}"


# --- rollout restart ------------------------------------------------------------


def preview_restart(params: dict) -> str:
    namespace, name = _target(params)
    with _apps_api() as (apps, _core):
        deployment = apps.read_namespaced_deployment(name, namespace, _request_timeout=_timeout())
    replicas = deployment.spec.replicas if deployment.spec.replicas is not None else 1
    return (
        f"deployment {namespace}/{name}: its {replicas} pods are replaced one by one "
        f"(pod template annotation {RESTARTED_AT} set)"
    )


def _restart_patch(params: dict) -> dict:
    stamp = params.get("restarted_at") or now_iso()
    return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}


def restart_applied(params: dict) -> bool:
    namespace, name = _target(params)
    with _apps_api() as (apps, _core):
        deployment = apps.read_namespaced_deployment(name, namespace, _request_timeout=_timeout())
    annotations = (deployment.spec.template.metadata.annotations or {}) if deployment.spec.template.metadata else {}
    return bool(params.get("restarted_at")) and annotations.get(RESTARTED_AT) == params["restarted_at"]


def restart(params: dict, report: Reporter) -> str:
    namespace, name = _target(params)
    patch = _restart_patch(params)
    with _apps_api() as (apps, _core):
        apps.patch_namespaced_deployment(name, namespace, patch, _request_timeout=_timeout())
    stamp = patch["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT]
    report(f"rollout restart of {namespace}/{name} started ({RESTARTED_AT}={stamp})", progress=100)
    return "restarted"


# --- rollout undo ---------------------------------------------------------------


def _revisions(apps, namespace: str, name: str) -> tuple[object, dict[int, object]]:
    """The deployment and its ReplicaSets by revision (what kubectl rollout undo reads)."""
    deployment = apps.read_namespaced_deployment(name, namespace, _request_timeout=_timeout())
    labels = deployment.spec.selector.match_labels or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    sets = apps.list_namespaced_replica_set(namespace, label_selector=selector, _request_timeout=_timeout())
    found = {}
    for replica_set in sets.items:
        owners = replica_set.metadata.owner_references or []
        if not any(o.kind == "Deployment" and o.uid == deployment.metadata.uid for o in owners):
            continue
        revision = (replica_set.metadata.annotations or {}).get(REVISION)
        if revision and revision.isdigit():
            found[int(revision)] = replica_set
    return deployment, found


def _pick(params: dict, deployment, found: dict[int, object]) -> int:
    current = int((deployment.metadata.annotations or {}).get(REVISION, "0") or 0)
    wanted = params.get("revision")
    if wanted:
        if wanted not in found:
            raise ActionError(f"revision {wanted} not found (known: {sorted(found) or 'none'})")
        if wanted == current:
            raise ActionError(f"revision {wanted} is already the current one")
        return wanted
    older = [r for r in found if r < current] if current else sorted(found)[:-1]
    if not older:
        raise ActionError("no previous revision to roll back to")
    return max(older)


def prepare_undo(params: dict) -> dict:
    namespace, name = _target(params)
    with _apps_api() as (apps, _core):
        deployment, found = _revisions(apps, namespace, name)
        return params | {"revision": _pick(params, deployment, found)}


def preview_undo(params: dict) -> str:
    namespace, name = _target(params)
    with _apps_api() as (apps, _core):
        deployment, found = _revisions(apps, namespace, name)
        revision = _pick(params, deployment, found)
    current = (deployment.metadata.annotations or {}).get(REVISION, "?")
    images = ", ".join(c.image for c in found[revision].spec.template.spec.containers)
    return f"deployment {namespace}/{name}: revision {current} → {revision} (images {images})"


def undo(params: dict, report: Reporter) -> str:
    namespace, name = _target(params)
    with _apps_api() as (apps, _core):
        deployment, found = _revisions(apps, namespace, name)
        revision = _pick(params, deployment, found) if params.get("revision") is None else params["revision"]
        if revision not in found:
            raise ActionError(f"revision {revision} not found (known: {sorted(found) or 'none'})")
        template = apps.api_client.sanitize_for_serialization(found[revision].spec.template)
        # Like kubectl: the ReplicaSet's own hash label is not part of the deployment's template.
        template.get("metadata", {}).get("labels", {}).pop("pod-template-hash", None)
        report(f"rolling {namespace}/{name} back to revision {revision}", progress=30)
        apps.patch_namespaced_deployment(
            name,
            namespace,
            [{"op": "replace", "path": "/spec/template", "value": template}],
            _request_timeout=_timeout(),
        )
    report(f"{namespace}/{name} rolled back to revision {revision}", progress=100)
    return f"rolled back to revision {revision}"


# --- pods -----------------------------------------------------------------------


def pods(params: dict, report: Reporter) -> str:
    namespace, name = _target(params)
    with _apps_api() as (apps, core):
        deployment = apps.read_namespaced_deployment(name, namespace, _request_timeout=_timeout())
        labels = deployment.spec.selector.match_labels or {}
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        listed = core.list_namespaced_pod(namespace, label_selector=selector, _request_timeout=_timeout())
    ready = 0
    for pod in listed.items:
        statuses = (pod.status.container_statuses or []) if pod.status else []
        is_ready = bool(statuses) and all(s.ready for s in statuses)
        ready += is_ready
        restarts = sum(s.restart_count or 0 for s in statuses)
        report(
            f"{pod.metadata.name}  {pod.status.phase if pod.status else '?'}  "
            f"ready={'yes' if is_ready else 'no'}  restarts={restarts}"
        )
    summary = f"{ready}/{len(listed.items)} pods ready"
    report(summary, progress=100)
    return summary
