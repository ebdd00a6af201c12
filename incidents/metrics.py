"""Incident metrics for /metrics.

`opsconsole_incidents_open{severity}` is read from the database at scrape
time (a db collector: exact whatever process serves the scrape). The
time-to-acknowledge/resolve histograms are observed by the process that makes
the transition, after commit; in multiprocess mode prometheus-client merges
every process's samples at scrape time.
"""

from collections.abc import Iterable

from django.db.models import Count, Q
from prometheus_client import Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

_BUCKETS = (60, 300, 600, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 24 * 3600, 72 * 3600)

TIME_TO_ACKNOWLEDGE = Histogram(
    "opsconsole_incident_time_to_acknowledge_seconds",
    "Seconds from declaration to first acknowledgement, by SEV.",
    ["severity"],
    buckets=_BUCKETS,
)
TIME_TO_RESOLVE = Histogram(
    "opsconsole_incident_time_to_resolve_seconds",
    "Seconds from declaration to resolution, by SEV.",
    ["severity"],
    buckets=_BUCKETS,
)


def observe_ack(severity: str, seconds: float) -> None:
    TIME_TO_ACKNOWLEDGE.labels(severity=severity).observe(max(seconds, 0.0))


def observe_resolve(severity: str, seconds: float) -> None:
    TIME_TO_RESOLVE.labels(severity=severity).observe(max(seconds, 0.0))


class OpenIncidentsCollector:
    """One query per scrape; every SEV level is exported, zero included."""

    def collect(self) -> Iterable[Metric]:
        from .models import OPEN_STATUSES, SeverityLevel

        gauge = GaugeMetricFamily(
            "opsconsole_incidents_open",
            "Open incidents (triggered, acknowledged or mitigated), by SEV.",
            labels=["severity"],
        )
        open_incidents = Count("incidents", filter=Q(incidents__status__in=OPEN_STATUSES))
        for name, n in SeverityLevel.objects.annotate(n=open_incidents).order_by("level").values_list("name", "n"):
            gauge.add_metric([name], n)
        yield gauge


COLLECTOR = OpenIncidentsCollector()
