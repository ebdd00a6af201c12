"""Prometheus metrics for /metrics.

Process metrics (requests, task counters) are prometheus-client objects; in
multiprocess mode (PROMETHEUS_MULTIPROC_DIR set, as under gunicorn with
several workers and the Celery worker beside it) every process writes its
samples to files there and a scrape merges them. Figures that live in the
database (open incidents, check states) are read at scrape time by the
collectors that apps register with register_db_collector.
"""

import glob
import hmac
import os
from collections.abc import Iterable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics_core import Metric

HTTP_REQUESTS = Counter(
    "http_requests", "HTTP requests served, by method, view and status.", ["method", "view", "status"]
)
HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to serve an HTTP request, by method and view.",
    ["method", "view"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
CELERY_TASKS = Counter("celery_tasks", "Celery tasks finished, by task name and outcome.", ["task", "state"])
CELERY_TASK_DURATION = Histogram(
    "celery_task_duration_seconds",
    "Time a Celery task ran, by task name.",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0),
)


# Written by opsconsole.tasks.verify_audit_chain (in the Celery worker); in
# multiprocess mode the most recent value of any process is exported.
AUDIT_CHAIN_INTACT = Gauge(
    "audit_chain_intact",
    "1 if the last audit-log verification found the hash chain intact, else 0.",
    multiprocess_mode="mostrecent",
)
AUDIT_CHAIN_VERIFIED_AT = Gauge(
    "audit_chain_last_verified_timestamp_seconds",
    "Unix time of the last audit-log verification.",
    multiprocess_mode="mostrecent",
)


# Set by opsconsole.tasks.run_watchdog: the watchdog itself stops when beat
# or the default worker does, and an alert on this gauge's age says so.
WATCHDOG_LAST_RUN = Gauge(
    "opsconsole_watchdog_last_run_timestamp_seconds",
    "Unix time of the watchdog task's last run.",
    multiprocess_mode="mostrecent",
)


class QueueLengthCollector:
    """Messages waiting in each Celery queue (Redis LLEN, read at scrape
    time): a growing backlog means too few workers for that queue."""

    def describe(self) -> Iterable[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        return [GaugeMetricFamily("celery_queue_length", "Messages waiting in a Celery queue.", labels=["queue"])]

    @staticmethod
    def queues() -> list[str]:
        routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
        routed |= {settings.CELERY_TASK_DEFAULT_QUEUE, settings.HEALTHCHECK_DEFAULT_QUEUE}
        return sorted(routed)

    def collect(self) -> Iterable[Metric]:
        import redis
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily("celery_queue_length", "Messages waiting in a Celery queue.", labels=["queue"])
        url = settings.CELERY_BROKER_URL
        if url.startswith(("redis://", "rediss://")):
            client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
            try:
                with client.pipeline(transaction=False) as pipe:
                    for queue in self.queues():
                        pipe.llen(queue)
                    lengths = pipe.execute()
                for queue, length in zip(self.queues(), lengths, strict=True):
                    family.add_metric([queue], length)
            except redis.RedisError:
                pass  # Redis down: no sample (and /readyz says so); the scrape still answers
            finally:
                client.close()
        yield family


class AuditHeadCollector:
    """The audit streams' heads, read at scrape time (one query): Prometheus
    keeps a copy of them outside the database, so rows deleted from the end
    of a stream together with its head record still show (the head going back)."""

    def collect(self) -> Iterable[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        from .models import AuditHead

        heads = list(AuditHead.objects.order_by("id").values_list("id", "position", "hash"))
        seq = GaugeMetricFamily(
            "audit_chain_head_seq",
            "Position of the last row of each audit stream (the chain's head).",
            labels=["stream"],
        )
        info = GaugeMetricFamily(
            "audit_chain_head_info",
            "Hash of the last row of each audit stream, as a label; always 1.",
            labels=["stream", "hash"],
        )
        for stream, position, hash_ in heads:
            seq.add_metric([str(stream)], position)
            info.add_metric([str(stream), hash_], 1)
        yield seq
        yield info


def observe_request(method: str, view: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method=method, view=view, status=str(status)).inc()
    HTTP_REQUEST_DURATION.labels(method=method, view=view).observe(seconds)


class _DatabaseCollector:
    """Protocol: an object with collect() yielding prometheus Metric families."""

    def collect(self) -> Iterable[Metric]:  # pragma: no cover - documentation only
        raise NotImplementedError


_db_collectors: list[_DatabaseCollector] = []


def register_db_collector(collector: _DatabaseCollector) -> None:
    """Apps call this from AppConfig.ready() to export figures read from the database."""
    if collector not in _db_collectors:
        _db_collectors.append(collector)


class _ThisProcess:
    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


class _MultiprocessFiles:
    """Merge the sample files of every process: this host's
    (PROMETHEUS_MULTIPROC_DIR) and those of processes elsewhere that share
    theirs through a volume (PROMETHEUS_MERGE_DIRS, e.g. the Celery worker's
    container). Each directory has its own writers, so pids never collide."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths

    def collect(self) -> Iterable[Metric]:
        files = [f for path in self.paths for f in sorted(glob.glob(os.path.join(path, "*.db")))]
        return multiprocess.MultiProcessCollector.merge(files, accumulate=True)


def build_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        paths = [os.environ["PROMETHEUS_MULTIPROC_DIR"], *settings.PROMETHEUS_MERGE_DIRS]
        registry.register(_MultiprocessFiles(paths))
    else:
        registry.register(_ThisProcess())
    for collector in _db_collectors:
        registry.register(collector)
    return registry


def _authorised(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if not token:
        return True
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not _authorised(request):
        response = HttpResponse("metrics need a bearer token\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(build_registry()), content_type=CONTENT_TYPE_LATEST)
