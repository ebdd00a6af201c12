"""Prometheus (the real binary scraping a test target) and Kubernetes (the
official client against a local server speaking the real API paths)."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.healthchecks.targets import HttpTarget, json_route
from tests.healthchecks.test_probes import probe
from tests.processes import free_port


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("prometheus")
    exporter = HttpTarget(
        {
            "/metrics": (
                200,
                "text/plain; version=0.0.4",
                '# TYPE queue_length gauge\nqueue_length{queue="default"} 1200\n'
                "# TYPE error_ratio gauge\nerror_ratio 0.002\n",
                0,
            )
        }
    )
    port = free_port()
    (folder / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: app\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{exporter.port}']\n"
    )
    process = subprocess.Popen(
        [
            "/usr/bin/prometheus",
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:  # wait until the first scrape is queryable
            result = probe("prometheus", {"url": url, "query": "queue_length"})
            if result.state != "unknown" and "value" in result.details:
                break
            assert time.monotonic() < deadline, f"Prometheus never scraped the target: {result.message}"
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(10)
        exporter.close()


@pytest.mark.slow
def test_prometheus_value_against_the_seeds_thresholds(prometheus):
    result = probe(
        "prometheus",
        {"url": prometheus, "query": 'queue_length{queue="default"}'},
        warning=1000,
        critical=5000,
    )
    assert result.state == "warning"
    assert result.message == "value 1200 is above the warning threshold 1000"
    error_rate = probe("prometheus", {"url": prometheus, "query": "error_ratio * 100"}, warning=1, critical=5)
    assert error_rate.state == "ok" and error_rate.details["value"] == pytest.approx(0.2)
    scalar = probe(
        "prometheus",
        {"url": prometheus, "query": "scalar(queue_length) * 5"},
        warning=1000,
        critical=5000,
    )
    assert scalar.state == "critical" and scalar.details["value"] == 6000


@pytest.mark.slow
def test_prometheus_failures_are_clear(prometheus):
    bad = probe("prometheus", {"url": prometheus, "query": "sum("})
    assert bad.state == "critical"
    assert bad.message.startswith("Prometheus query failed (HTTP 400): ") and "parse error" in bad.message
    empty = probe("prometheus", {"url": prometheus, "query": "no_such_metric"})
    assert (empty.state, empty.message) == ("unknown", "the query returned no series")
    down = probe("prometheus", {"url": f"http://127.0.0.1:{free_port()}", "query": "up"})
    assert (down.state, down.message) == ("critical", "connection refused")


# --- Kubernetes -------------------------------------------------------------------------


def _deployment(replicas: int, available: int) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "prod"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web", "tier": "front"}},
            "template": {
                "metadata": {"labels": {"app": "web", "tier": "front"}},
                "spec": {"containers": [{"name": "web", "image": "web:1.2"}]},
            },
        },
        "status": {
            "replicas": replicas,
            "availableReplicas": available,
            "readyReplicas": available,
        },
    }


def _pods(restarts: list[int]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "PodList",
        "metadata": {"resourceVersion": "1"},
        "items": [
            {
                "metadata": {"name": f"web-{i}", "namespace": "prod", "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "web:1.2"}]},
                "status": {
                    "phase": "Running",
                    "containerStatuses": [
                        {
                            "name": "web",
                            "image": "web:1.2",
                            "imageID": "sha256:1",
                            "ready": True,
                            "restartCount": count,
                        }
                    ],
                },
            }
            for i, count in enumerate(restarts)
        ],
    }


@pytest.fixture
def kube(tmp_path, settings):
    settings.HEALTHCHECK_FILES_DIR = str(tmp_path)  # kubeconfigs must live there
    routes = {}
    server = HttpTarget(routes)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "test",
                "clusters": [{"name": "test", "cluster": {"server": f"http://127.0.0.1:{server.port}"}}],
                "users": [{"name": "probe", "user": {"token": "probe-token"}}],
                "contexts": [{"name": "test", "context": {"cluster": "test", "user": "probe"}}],
            }
        )
    )
    server.kubeconfig = str(kubeconfig)
    server.routes = routes
    yield server
    server.close()


def _kube_probe(kube, **thresholds):
    return probe(
        "kubernetes",
        {"kubeconfig": kube.kubeconfig, "namespace": "prod", "deployment": "web"},
        timeout=15,  # generous: the machine running the suite may be busy
        **thresholds,
    )


def test_kubernetes_healthy_deployment(kube):
    kube.routes["/apis/apps/v1/namespaces/prod/deployments/web"] = json_route(_deployment(3, 3))
    kube.routes["/api/v1/namespaces/prod/pods"] = json_route(_pods([0, 1, 0]))
    result = _kube_probe(kube, warning=5, critical=20)
    assert (result.state, result.message) == ("ok", "3/3 replicas available, 1 restarts")
    paths = [path for _method, path, _headers in kube.server.requests]
    assert paths[1] == "/api/v1/namespaces/prod/pods?labelSelector=app%3Dweb%2Ctier%3Dfront"
    assert kube.server.requests[0][2]["Authorization"] == "Bearer probe-token"


def test_kubernetes_replicas_and_restarts(kube):
    kube.routes["/apis/apps/v1/namespaces/prod/deployments/web"] = json_route(_deployment(3, 1))
    kube.routes["/api/v1/namespaces/prod/pods"] = json_route(_pods([0]))
    assert _kube_probe(kube).state == "warning"
    kube.routes["/apis/apps/v1/namespaces/prod/deployments/web"] = json_route(_deployment(3, 0))
    assert _kube_probe(kube).message == "0/3 replicas available, 0 restarts"
    assert _kube_probe(kube).state == "critical"
    kube.routes["/apis/apps/v1/namespaces/prod/deployments/web"] = json_route(_deployment(2, 2))
    kube.routes["/api/v1/namespaces/prod/pods"] = json_route(_pods([4, 3]))
    result = _kube_probe(kube, warning=5, critical=20)
    assert result.state == "warning"
    assert result.message == "2/2 replicas available, 7 restarts (7 is above the warning threshold 5)"


def test_kubernetes_failures_are_clear(kube):
    kube.routes["/apis/apps/v1/namespaces/prod/deployments/web"] = json_route(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "reason": "NotFound",
            "code": 404,
        },
        status=404,
    )
    assert _kube_probe(kube).message == "deployment prod/web not found"
    kube.routes["/apis/apps/v1/namespaces/prod/deployments/web"] = (
        403,
        "application/json",
        "{}",
        0,
    )
    assert _kube_probe(kube).message == "the Kubernetes API refused access (HTTP 403)"
    kube.routes["/apis/apps/v1/namespaces/prod/deployments/web"] = (
        200,
        "application/json",
        "<html>proxy</html>",
        0,
    )
    malformed = _kube_probe(kube)
    assert malformed.state == "critical" and malformed.message.startswith("malformed answer from the Kubernetes API")
    kube.routes["/apis/apps/v1/namespaces/prod/deployments/web"] = json_route(_deployment(1, 1), delay=3)
    slow = probe(
        "kubernetes",
        {"kubeconfig": kube.kubeconfig, "namespace": "prod", "deployment": "web"},
        timeout=1,
    )
    assert slow.state == "critical" and slow.message in (
        "timed out after 1s",
        "cannot reach the Kubernetes API: ReadTimeoutError",
    )


def test_kubernetes_without_config_outside_a_cluster():
    result = probe("kubernetes", {"namespace": "prod", "deployment": "web"})
    assert result.state == "critical" and result.message.startswith("no kubeconfig given and not running in a cluster")
