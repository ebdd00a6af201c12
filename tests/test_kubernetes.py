"""deploy/kubernetes: every manifest, rendered like `kubectl apply -k`
(tests/kustomize.py), must deserialise into the official client's models
without losing a field (a typo such as `readinesProbe` fails), hold every
setting, give remediation exactly the API access its actions use, and keep
one beat."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from kubernetes import client

from tests.kustomize import build, merge
from tests.test_deploy import _read_by_settings

ROOT = Path(settings.BASE_DIR)
K8S = ROOT / "deploy" / "kubernetes"
BASE = K8S / "base"
PRODUCTION = K8S / "overlays" / "production"
WORKER_QUEUES = {"default": {"default", "notifications"}, "probes": {"probes"}, "remediation": {"remediation"}}


def _find(docs: list[dict], kind: str, name: str) -> dict:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def _model_name(doc: dict) -> str:
    version = doc["apiVersion"].rsplit("/", 1)[-1]
    return version[0].upper() + version[1:] + doc["kind"]


def _lost_fields(original, round_trip, path="") -> list[str]:
    """Paths present in the manifest but not in what the model gives back."""
    if isinstance(original, dict):
        if not isinstance(round_trip, dict):
            return [path or "/"]
        lost = []
        for key, value in original.items():
            if key not in round_trip:
                lost.append(f"{path}.{key}")
            else:
                lost += _lost_fields(value, round_trip[key], f"{path}.{key}")
        return lost
    if isinstance(original, list):
        if not isinstance(round_trip, list) or len(original) != len(round_trip):
            return [path]
        return [
            p
            for i, (a, b) in enumerate(zip(original, round_trip, strict=True))
            for p in _lost_fields(a, b, f"{path}[{i}]")
        ]
    return [] if original == round_trip else [f"{path} ({original!r} became {round_trip!r})"]


def deserialise(doc: dict):
    """The client's model of a manifest; ValueError when a field is unknown,
    misspelt or of the wrong type, or a required one is missing."""
    name = _model_name(doc)
    if not hasattr(client, name):
        raise ValueError(f"{doc['kind']} ({doc['apiVersion']}) has no model {name} in the kubernetes client")
    api = client.ApiClient()
    model = api.deserialize(json.dumps(doc), name, "application/json")
    lost = _lost_fields(doc, api.sanitize_for_serialization(model))
    if lost:
        raise ValueError(f"{doc['kind']}/{doc['metadata'].get('name')}: unknown or mistyped fields {lost}")
    return model


@pytest.fixture(scope="module")
def base() -> list[dict]:
    return build(BASE)


@pytest.fixture(scope="module")
def production() -> list[dict]:
    return build(PRODUCTION)


@pytest.mark.parametrize("directory", [BASE, PRODUCTION], ids=["base", "production"])
def test_every_manifest_loads_into_the_kubernetes_client_models(directory):
    docs = build(directory)
    assert len(docs) >= 13
    for doc in docs:
        deserialise(doc)
    names = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(names) == len(set(names)), "a resource is defined twice"


def test_a_typo_or_a_missing_field_fails_to_load(base):
    web = _find(base, "Deployment", "opsconsole-web")
    typo = merge(web, {"spec": {"template": {"spec": {"containers": [{"name": "web", "readinesProbe": {}}]}}}})
    with pytest.raises(ValueError, match="readinesProbe"):
        deserialise(typo)
    wrong_type = merge(web, {"spec": {"replicas": {"count": 2}}})
    with pytest.raises((ValueError, TypeError)):
        deserialise(wrong_type)
    nameless = json.loads(json.dumps(web))
    del nameless["spec"]["template"]["spec"]["containers"][0]["name"]
    with pytest.raises(ValueError, match="name"):
        deserialise(nameless)
    with pytest.raises(ValueError, match="no model"):
        deserialise({"apiVersion": "apps/v1", "kind": "Deplyment", "metadata": {"name": "x"}})


def test_production_overlay_namespaces_pins_the_image_and_scales(production):
    for doc in production:
        if doc["kind"] not in ("Namespace", "ClusterRole"):
            assert doc["metadata"]["namespace"] == "opsconsole", doc["metadata"]["name"]
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "opsconsole"
    for doc in production:
        for container in doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            assert container["image"] == "registry.example.com/opsconsole:0.1.0"
    assert _find(production, "Deployment", "opsconsole-web")["spec"]["replicas"] == 3
    assert _find(production, "Deployment", "opsconsole-worker-probes")["spec"]["replicas"] == 2
    [binding] = [d for d in production if d["kind"] == "RoleBinding"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "opsconsole-remediation", "namespace": "opsconsole"}
    ]
    config = _find(production, "ConfigMap", "opsconsole-config")["data"]
    assert config["RUNBOOK_ALLOWED_NAMESPACES"] == "shop" and config["HEALTHCHECK_DEFAULT_QUEUE"] == "probes"


def _pod(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]


def test_web_runs_gunicorn_with_readiness_and_liveness(production):
    web = _find(production, "Deployment", "opsconsole-web")
    [container] = _pod(web)["containers"]
    assert container["command"] == ["gunicorn", "-c", "gunicorn.conf.py"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["ports"] == [{"name": "http", "containerPort": 8000}]
    service = _find(production, "Service", "opsconsole-web")
    assert service["spec"]["selector"] == web["spec"]["selector"]["matchLabels"]
    annotations = web["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] == "/metrics"
    assert annotations["prometheus.io/port"] == "8000"


def _queues(deployment: dict) -> set[str]:
    command = _pod(deployment)["containers"][0]["command"]
    return set(command[command.index("--queues") + 1].split(","))


def test_workers_are_split_by_queue_and_consume_every_routed_queue(production):
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()} | {settings.CELERY_TASK_DEFAULT_QUEUE}
    config = _find(production, "ConfigMap", "opsconsole-config")["data"]
    routed.add(config["HEALTHCHECK_DEFAULT_QUEUE"])  # where probe batches go
    consumed: list[str] = []
    for name, queues in WORKER_QUEUES.items():
        worker = _find(production, "Deployment", f"opsconsole-worker-{name}")
        assert _queues(worker) == queues
        consumed += sorted(queues)
        annotations = worker["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == config["CELERY_METRICS_PORT"]
    assert len(consumed) == len(set(consumed)), "a queue is consumed by two worker Deployments"
    assert routed == set(consumed), f"routed {routed}, consumed {set(consumed)}"
    assert {"probes", "remediation", "default"} <= routed


def test_only_the_remediation_worker_holds_a_kubernetes_token(production):
    for doc in production:
        pod = (doc.get("spec", {}).get("template") or {}).get("spec")
        if pod is None:
            continue
        remediation = doc["metadata"]["name"] == "opsconsole-worker-remediation"
        assert pod["serviceAccountName"] == ("opsconsole-remediation" if remediation else "opsconsole")
        assert pod["automountServiceAccountToken"] is remediation, doc["metadata"]["name"]
        assert pod["securityContext"]["runAsNonRoot"] is True
    for account in [d for d in production if d["kind"] == "ServiceAccount"]:
        assert account["automountServiceAccountToken"] is False


def test_one_beat_that_cannot_run_twice(production):
    beat = _find(production, "Deployment", "opsconsole-beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    assert "beat" in _pod(beat)["containers"][0]["command"]
    scaled = [d["spec"]["scaleTargetRef"]["name"] for d in production if d["kind"] == "HorizontalPodAutoscaler"]
    assert "opsconsole-beat" not in scaled and "opsconsole-worker-remediation" not in scaled
    assert set(scaled) == {"opsconsole-web", "opsconsole-worker-probes"}


def test_migration_job(production):
    job = _find(production, "Job", "opsconsole-migrate")
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


# --- settings -------------------------------------------------------------------------


def _readme_settings() -> set[str]:
    """Every variable named in README's configuration table."""
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return {
        name
        for line in table.splitlines()
        if line.startswith("| `")
        for name in re.findall(r"`([A-Z_]+)`", line.split("|")[1])
    }


def _environment(docs: list[dict]) -> tuple[dict, dict]:
    config = _find(docs, "ConfigMap", "opsconsole-config")["data"]
    secret = _find(docs, "Secret", "opsconsole-secrets")["stringData"]
    return config, secret


def test_configmap_and_secret_cover_every_setting_and_nothing_else(production):
    config, secret = _environment(production)
    assert not set(config) & set(secret), "a variable is both in the ConfigMap and the Secret"
    given = set(config) | set(secret)
    documented = _readme_settings()
    read = _read_by_settings()
    assert len(documented) > 60
    assert read <= given, f"settings read variables the manifests do not set: {read - given}"
    assert documented <= given, f"README documents variables the manifests do not set: {documented - given}"
    assert given <= read | documented, f"the manifests set variables nothing reads: {given - read - documented}"
    for name in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "METRICS_TOKEN", "EMAIL_URL"):
        assert name in secret, f"{name} belongs in the Secret"
    for pod in [_pod(d) for d in production if d["kind"] in ("Deployment", "Job")]:
        env_from = pod["containers"][0]["envFrom"]
        assert env_from == [
            {"configMapRef": {"name": "opsconsole-config"}},
            {"secretRef": {"name": "opsconsole-secrets"}},
        ]


def test_compose_sets_nothing_the_kubernetes_config_lacks(production):
    config, secret = _environment(production)
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name in ("web", "worker", "beat"):
        missing = set(compose["services"][name]["environment"]) - set(config) - set(secret)
        assert not missing, f"compose {name} sets {missing}, the Kubernetes ConfigMap/Secret do not"


def _settings_with(environment: dict) -> subprocess.CompletedProcess:
    script = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({'queue': s.HEALTHCHECK_DEFAULT_QUEUE, 'deny': s.HEALTHCHECK_DENY_NETWORKS, "
        "'debug': s.DEBUG, 'hosts': s.ALLOWED_HOSTS, 'engine': s.DATABASES['default']['ENGINE'], "
        "'routes': s.CELERY_TASK_ROUTES['runbooks.tasks.*']['queue'], 'merge': s.PROMETHEUS_MERGE_DIRS}))"
    )
    env = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "opsconsole.settings", **environment}
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_console_starts_with_the_configmap_and_refuses_the_placeholder_secret(production, tmp_path):
    config, secret = _environment(production)
    config = config | {"STATIC_ROOT": str(tmp_path / "static"), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    refused = _settings_with(config | secret)
    assert refused.returncode != 0 and "SECRET_KEY is too weak" in refused.stderr
    real = secret | {"SECRET_KEY": "k8s-test-" + "0123456789abcdefghij" * 3}
    started = _settings_with(config | real)
    assert started.returncode == 0, started.stderr[-2000:]
    loaded = json.loads(started.stdout.strip().splitlines()[-1])
    assert loaded == {
        "queue": "probes",
        "deny": ["link-local", "metadata", "loopback", "private"],
        "debug": False,
        "hosts": ["ops.example.com", "opsconsole-web"],
        "engine": "django.db.backends.postgresql",
        "routes": "remediation",
        "merge": [],
    }


# --- RBAC -----------------------------------------------------------------------------

_PATH = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[^/]+)/[^/]+)/namespaces/[^/]+/(?P<resource>[^/?]+)"
    r"(?:/(?P<name>[^/?]+)(?:/(?P<sub>[^/?]+))?)?"
)
_VERBS = {"PATCH": "patch", "PUT": "update", "POST": "create", "DELETE": "delete"}


def _permissions_of(requests) -> set[tuple[str, str, str]]:
    """(apiGroup, resource[/subresource], verb) of each API request, as the API server's authoriser sees it."""
    needed = set()
    for method, path, _content_type, _body in requests:
        match = _PATH.match(path)
        assert match, path
        resource = match["resource"] + (f"/{match['sub']}" if match["sub"] else "")
        verb = _VERBS.get(method) or ("get" if match["name"] else "list")
        needed.add((match["group"] or "", resource, verb))
    return needed


def _granted(docs: list[dict]) -> set[tuple[str, str, str]]:
    role = _find(docs, "ClusterRole", "opsconsole-remediation")
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


@pytest.mark.django_db
def test_remediation_rbac_is_exactly_what_the_runbook_actions_call(production, tmp_path, settings):
    """Every Kubernetes action (dry run, run, verification) against the local
    API server; the permissions its requests need must equal the role's rules."""
    from runbooks.actions import REGISTRY, Reporter
    from tests.runbooks.kube import FakeCluster

    cluster = FakeCluster(tmp_path)
    settings.RUNBOOK_KUBECONFIG = str(cluster.kubeconfig)
    settings.RUNBOOK_ALLOWED_NAMESPACES = ["prod"]
    settings.RUNBOOK_ALLOWED_DEPLOYMENTS = ["prod/worker"]
    settings.RUNBOOK_ACTION_TIMEOUT_SECONDS = 10
    extra = {"k8s_scale": {"replicas": "4"}}
    actions = [action for key, action in REGISTRY.items() if key.startswith("k8s_")]
    assert {a.key for a in actions} == {"k8s_scale", "k8s_restart", "k8s_undo", "k8s_pods"}
    try:
        for action in actions:
            params = action.clean({"namespace": "prod", "deployment": "worker", **extra.get(action.key, {})})
            if action.prepare:
                params = action.prepare(params)
            if action.preview:
                action.preview(params)
            action.run(params, Reporter(), "key")
            if action.verify:
                action.verify(params)
        needed = _permissions_of(cluster.requests)
    finally:
        cluster.close()
    assert needed == _granted(production)
    assert needed == {
        ("apps", "deployments", "get"),
        ("apps", "deployments", "patch"),
        ("apps", "deployments/scale", "get"),
        ("apps", "deployments/scale", "patch"),
        ("apps", "replicasets", "list"),
        ("", "pods", "list"),
    }
    binding = _find(production, "RoleBinding", "opsconsole-remediation")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "opsconsole-remediation",
    }
    assert not [d for d in production if d["kind"] in ("ClusterRoleBinding", "Role")], "no cluster-wide grant"


def test_manifests_match_the_dockerfile(production):
    """The image's user and static folder are what the pods assume."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    uid = int(re.search(r"--uid (\d+)", dockerfile).group(1))
    static_root = re.search(r"STATIC_ROOT=(\S+)", dockerfile).group(1)
    config, _secret = _environment(production)
    assert config["STATIC_ROOT"] == static_root
    for doc in production:
        pod = (doc.get("spec", {}).get("template") or {}).get("spec")
        if pod is not None:
            assert pod["securityContext"]["runAsUser"] == uid, doc["metadata"]["name"]
            mounts = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
            assert {"/tmp", "/app/var"} <= mounts  # read-only root: the only writable places
    assert "WORKDIR /app" in dockerfile
