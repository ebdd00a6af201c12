"""Checklist figures for /metrics.

`opsconsole_checklist_items_ticked_total` counts ticks as they happen (a
prometheus-client Counter: multiprocess-safe under gunicorn); the runs gauge
is read from the database at scrape time.
"""

from collections.abc import Iterable

from django.db.models import Count
from django.utils import timezone
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

ITEMS_TICKED = Counter("opsconsole_checklist_items_ticked", "Checklist items ticked, by who ticked them.", ["by"])


def count_tick() -> None:
    ITEMS_TICKED.labels(by="person").inc()


def count_auto_ticks(n: int) -> None:
    if n:
        ITEMS_TICKED.labels(by="health_check").inc(n)


class ChecklistRunsCollector:
    """opsconsole_checklist_runs{status}: runs created today (UTC), by status."""

    def collect(self) -> Iterable[Metric]:
        from .models import ChecklistRun

        start = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
        counts = dict(
            ChecklistRun.objects.filter(created_at__gte=start)
            .values_list("status")
            .annotate(n=Count("id"))
            .values_list("status", "n")
        )
        family = GaugeMetricFamily(
            "opsconsole_checklist_runs",
            "Checklist runs created today (UTC), by status.",
            labels=["status"],
        )
        for status in ChecklistRun.Status.values:
            family.add_metric([status], counts.get(status, 0))
        yield family
