"""Platform probes: Prometheus instant query, Kubernetes deployment, heartbeat."""

from __future__ import annotations

import asyncio
import datetime
import json
import math
import time
from urllib.parse import urlencode

from . import files, httpclient, policy
from .base import (
    CRITICAL,
    OK,
    UNKNOWN,
    WARNING,
    ProbeError,
    ProbeResult,
    ProbeSpec,
    describe_threshold,
    excerpt,
    grade,
    worse,
)


async def probe_prometheus(spec: ProbeSpec) -> ProbeResult:
    """An instant query; the first sample's value is graded against the thresholds."""
    config = spec.config
    url = config["url"].rstrip("/") + "/api/v1/query?" + urlencode({"query": config["query"]})
    started = time.perf_counter()
    response = await httpclient.request(url, headers=config.get("headers") or {})
    latency = (time.perf_counter() - started) * 1000
    try:
        document = json.loads(response.body)
    except ValueError as exc:
        text = f"Prometheus answered HTTP {response.status} with a body that is not JSON"
        raise ProbeError(text, text) from exc
    if not isinstance(document, dict) or document.get("status") != "success":
        error = document.get("error") if isinstance(document, dict) else None
        raise ProbeError(
            f"Prometheus query failed (HTTP {response.status}): {excerpt(error, 100) if error else 'no error given'}",
            f"Prometheus query failed (HTTP {response.status})",
        )
    data = document.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    if kind == "vector":
        if not result:
            state = CRITICAL if config.get("empty_is_critical") else UNKNOWN
            return ProbeResult(state, "the query returned no series", latency, summary="the query returned no series")
        raw = result[0]["value"][1]
    elif kind == "scalar":
        raw = result[1]
    else:
        text = f"the query returned a {excerpt(kind, 20)}, not a vector or scalar"
        raise ProbeError(text, text)
    try:
        value = float(raw)
    except (TypeError, ValueError) as exc:
        raise ProbeError(
            f"Prometheus returned a sample that is not a number: {excerpt(raw)}",
            "Prometheus returned a sample that is not a number",
        ) from exc
    if math.isnan(value):
        text = "the query returned NaN"
        return ProbeResult(UNKNOWN, text, latency, {"value": None}, summary=text)
    below = bool(config.get("below"))
    state = grade(value, spec.warning, spec.critical, below=below)
    series = len(result) if kind == "vector" else 1
    return ProbeResult(
        state,
        "value "
        + describe_threshold(round(value, 4), state, spec.warning, spec.critical, below=below)
        + (f" (first of {series} series)" if series > 1 else ""),
        latency,
        {"value": value},
        summary="value within the thresholds" if state == OK else f"value beyond the {state} threshold",
    )


def _pin_api_server(configuration) -> None:
    """Point the client at the checked address of the API server's name
    (target policy); TLS still verifies the name."""
    from urllib.parse import urlsplit, urlunsplit

    if configuration.proxy:
        raise ProbeError("the kubeconfig sets a proxy: probes connect to the API server directly", "kubeconfig refused")
    parts = urlsplit(configuration.host)
    if not parts.hostname:
        raise ProbeError(f"the kubeconfig's server {excerpt(configuration.host)} has no host", "kubeconfig refused")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = policy.resolve_blocking(parts.hostname, port)[0]
    if address == parts.hostname:
        return
    netloc = f"[{address}]" if ":" in address else address
    pinned = urlunsplit(parts._replace(netloc=f"{netloc}:{port}"))
    configuration.host = pinned
    if parts.scheme == "https" and not configuration.tls_server_name:
        configuration.tls_server_name = parts.hostname
    hook = configuration.refresh_api_key_hook
    if hook is not None:
        # The kubeconfig loader's hook copies the server's URL back (and
        # installs itself again) before every request: pin after it.
        def refresh(conf) -> None:
            hook(conf)
            conf.host = pinned
            conf.refresh_api_key_hook = refresh

        configuration.refresh_api_key_hook = refresh


def _kubernetes_api_client(config: dict):
    from kubernetes import client
    from kubernetes import config as kube_config

    configuration = client.Configuration()
    context = config.get("context") or None
    try:
        if config.get("kubeconfig_content"):
            document = files.load_kubeconfig_content(config["kubeconfig_content"])
            kube_config.load_kube_config_from_dict(
                document, context=context, client_configuration=configuration, persist_config=False
            )
        elif config.get("kubeconfig"):
            path = files.allowed_file(config["kubeconfig"], what="kubeconfig")
            kube_config.load_kube_config(
                config_file=path, context=context, client_configuration=configuration, persist_config=False
            )
        else:
            kube_config.load_incluster_config(client_configuration=configuration)
    except kube_config.ConfigException as exc:
        where = (
            "the kubeconfig"
            if config.get("kubeconfig") or config.get("kubeconfig_content")
            else ("no kubeconfig given and not running in a cluster")
        )
        raise ProbeError(f"{where}: {excerpt(str(exc), 200)}", "Kubernetes configuration error") from exc
    _pin_api_server(configuration)
    return client.ApiClient(configuration)


def _kubernetes_read(config: dict, timeout: float) -> dict:
    """Blocking: runs in a thread. Every call carries the check's timeout."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    namespace, name = config.get("namespace") or "default", config["deployment"]
    api_client = _kubernetes_api_client(config)
    try:
        deployment = client.AppsV1Api(api_client).read_namespaced_deployment(name, namespace, _request_timeout=timeout)
        desired = deployment.spec.replicas if deployment.spec.replicas is not None else 1
        available = (deployment.status.available_replicas or 0) if deployment.status else 0
        selector = (deployment.spec.selector.match_labels or {}) if deployment.spec.selector else {}
        restarts = 0
        if selector:
            pods = client.CoreV1Api(api_client).list_namespaced_pod(
                namespace,
                label_selector=",".join(f"{k}={v}" for k, v in sorted(selector.items())),
                _request_timeout=timeout,
            )
            for pod in pods.items:
                for status in (pod.status.container_statuses or []) if pod.status else []:
                    restarts += status.restart_count or 0
        return {"desired": desired, "available": available, "restarts": restarts}
    except ApiException as exc:
        if exc.status == 404:
            raise ProbeError(f"deployment {namespace}/{name} not found", "deployment not found") from exc
        if exc.status in (401, 403):
            text = f"the Kubernetes API refused access (HTTP {exc.status})"
            raise ProbeError(text, text) from exc
        raise ProbeError(
            f"the Kubernetes API answered HTTP {exc.status}: {excerpt(exc.reason)}",
            f"the Kubernetes API answered HTTP {exc.status}",
        ) from exc
    except HTTPError as exc:
        text = f"cannot reach the Kubernetes API: {type(exc).__name__}"
        raise ProbeError(text, text) from exc
    except (ValueError, AttributeError, TypeError) as exc:
        raise ProbeError(
            f"malformed answer from the Kubernetes API: {excerpt(str(exc))}",
            "malformed answer from the Kubernetes API",
        ) from exc
    finally:
        api_client.close()


async def probe_kubernetes(spec: ProbeSpec) -> ProbeResult:
    """Available vs desired replicas (none available: critical; fewer: warning),
    and container restarts of the deployment's pods against the thresholds."""
    started = time.perf_counter()
    figures = await asyncio.to_thread(_kubernetes_read, spec.config, spec.timeout)
    latency = (time.perf_counter() - started) * 1000
    desired, available, restarts = figures["desired"], figures["available"], figures["restarts"]
    state = OK
    if available < desired:
        state = CRITICAL if available == 0 else WARNING
    restart_state = grade(restarts, spec.warning, spec.critical)
    state = worse(state, restart_state)
    message = f"{available}/{desired} replicas available, {restarts} restarts"
    if restart_state != OK:
        message += f" ({describe_threshold(restarts, restart_state, spec.warning, spec.critical)})"
    return ProbeResult(state, message, latency, figures, summary=message)


def _ago(delta: datetime.timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"


async def probe_heartbeat(spec: ProbeSpec, now: datetime.datetime | None = None) -> ProbeResult:
    """Dead man's switch: critical once period + grace pass without a ping,
    or when the job pinged its fail URL. Its messages hold only times: the
    summary is the message. No latency: nothing is timed (the board shows —)."""
    result = _heartbeat(spec, now)
    result.summary = result.message
    return result


def _heartbeat(spec: ProbeSpec, now: datetime.datetime | None) -> ProbeResult:
    now = now or datetime.datetime.now(datetime.UTC)
    period = datetime.timedelta(seconds=int(spec.config.get("period_seconds") or spec.interval_seconds))
    grace = datetime.timedelta(seconds=int(spec.config.get("grace_seconds") or 0))
    if spec.last_ping_at is None:
        since = spec.created_at or now
        if now - since > period + grace:
            return ProbeResult(
                CRITICAL,
                f"no ping received in the {_ago(now - since)} since the check was created",
            )
        return ProbeResult(UNKNOWN, "waiting for the first ping")
    age = now - spec.last_ping_at
    if spec.last_ping_failed:
        return ProbeResult(CRITICAL, f"the job reported a failure {_ago(age)} ago")
    if age > period + grace:
        return ProbeResult(CRITICAL, f"last ping {_ago(age)} ago; expected every {_ago(period)} (+{_ago(grace)} grace)")
    return ProbeResult(OK, f"last ping {_ago(age)} ago")
