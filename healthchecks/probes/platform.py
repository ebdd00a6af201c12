"""Platform probes: Prometheus instant query, Kubernetes deployment, heartbeat."""

from __future__ import annotations

import asyncio
import datetime
import json
import math
import time
from urllib.parse import urlencode

from . import httpclient
from .base import (
    CRITICAL,
    OK,
    UNKNOWN,
    WARNING,
    ProbeError,
    ProbeResult,
    ProbeSpec,
    describe_threshold,
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
        raise ProbeError(
            f"Prometheus answered HTTP {response.status} with a body that is not JSON"
        ) from exc
    if not isinstance(document, dict) or document.get("status") != "success":
        error = document.get("error") if isinstance(document, dict) else None
        raise ProbeError(
            f"Prometheus query failed (HTTP {response.status}): {error or 'no error given'}"
        )
    data = document.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    if kind == "vector":
        if not result:
            state = CRITICAL if config.get("empty_is_critical") else UNKNOWN
            return ProbeResult(state, "the query returned no series", latency)
        raw = result[0]["value"][1]
    elif kind == "scalar":
        raw = result[1]
    else:
        raise ProbeError(f"the query returned a {kind}, not a vector or scalar")
    try:
        value = float(raw)
    except (TypeError, ValueError) as exc:
        raise ProbeError(f"Prometheus returned a sample that is not a number: {raw!r}") from exc
    if math.isnan(value):
        return ProbeResult(UNKNOWN, "the query returned NaN", latency, {"value": None})
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
    )


def _kubernetes_api_client(config: dict):
    from kubernetes import client
    from kubernetes import config as kube_config

    if config.get("kubeconfig"):
        return kube_config.new_client_from_config(
            config_file=config["kubeconfig"], context=config.get("context") or None
        )
    configuration = client.Configuration()
    try:
        kube_config.load_incluster_config(client_configuration=configuration)
    except kube_config.ConfigException as exc:
        raise ProbeError(f"no kubeconfig given and not running in a cluster: {exc}") from exc
    return client.ApiClient(configuration)


def _kubernetes_read(config: dict, timeout: float) -> dict:
    """Blocking: runs in a thread. Every call carries the check's timeout."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    namespace, name = config.get("namespace") or "default", config["deployment"]
    api_client = _kubernetes_api_client(config)
    try:
        deployment = client.AppsV1Api(api_client).read_namespaced_deployment(
            name, namespace, _request_timeout=timeout
        )
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
            raise ProbeError(f"deployment {namespace}/{name} not found") from exc
        if exc.status in (401, 403):
            raise ProbeError(f"the Kubernetes API refused access (HTTP {exc.status})") from exc
        raise ProbeError(f"the Kubernetes API answered HTTP {exc.status}: {exc.reason}") from exc
    except HTTPError as exc:
        raise ProbeError(f"cannot reach the Kubernetes API: {type(exc).__name__}") from exc
    except (ValueError, AttributeError, TypeError) as exc:
        raise ProbeError(f"malformed answer from the Kubernetes API: {exc}") from exc
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
    return ProbeResult(state, message, latency, figures)


def _ago(delta: datetime.timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"


async def probe_heartbeat(spec: ProbeSpec, now: datetime.datetime | None = None) -> ProbeResult:
    """Dead man's switch: critical once period + grace pass without a ping,
    or when the job pinged its fail URL."""
    now = now or datetime.datetime.now(datetime.UTC)
    period = datetime.timedelta(
        seconds=int(spec.config.get("period_seconds") or spec.interval_seconds)
    )
    grace = datetime.timedelta(seconds=int(spec.config.get("grace_seconds") or 0))
    if spec.last_ping_at is None:
        since = spec.created_at or now
        if now - since > period + grace:
            return ProbeResult(
                CRITICAL,
                f"no ping received in the {_ago(now - since)} since the check was created",
                0.0,
            )
        return ProbeResult(UNKNOWN, "waiting for the first ping", 0.0)
    age = now - spec.last_ping_at
    if spec.last_ping_failed:
        return ProbeResult(CRITICAL, f"the job reported a failure {_ago(age)} ago", 0.0)
    if age > period + grace:
        return ProbeResult(
            CRITICAL,
            f"last ping {_ago(age)} ago; expected every {_ago(period)} (+{_ago(grace)} grace)",
            0.0,
        )
    return ProbeResult(OK, f"last ping {_ago(age)} ago", 0.0)
