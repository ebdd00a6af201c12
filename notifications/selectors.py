"""Reads of the notifications app: the dead-letter list, the dashboard panel, /metrics."""

from django.db.models import Count, Q
from prometheus_client.core import GaugeMetricFamily

from .models import Delivery


def dead_letters():
    """Dead deliveries, newest first, with their service (a queryset: page it)."""
    return Delivery.objects.filter(status=Delivery.Status.DEAD).select_related("service")


def dashboard_panel_context(request) -> dict:
    """Dashboard "Notifications": dead letters, retries, recent failures (2 queries)."""
    failing = [Delivery.Status.FAILED, Delivery.Status.DEAD]
    counts = Delivery.objects.filter(status__in=failing).aggregate(
        dead=Count("pk", filter=Q(status=Delivery.Status.DEAD)),
        retrying=Count("pk", filter=Q(status=Delivery.Status.FAILED)),
    )
    return {
        "dead_count": counts["dead"],
        "retrying_count": counts["retrying"],
        "recent_failures": list(Delivery.objects.filter(status__in=failing)[:5]),
        "show_admin": request.user.is_staff,
    }


class DeadLetterCollector:
    """/metrics: dead letters waiting for a human (read at scrape time)."""

    def collect(self):
        gauge = GaugeMetricFamily(
            "opsconsole_notification_dead_letters",
            "Notifications that gave up and wait in the dead-letter list.",
        )
        gauge.add_metric([], Delivery.objects.filter(status=Delivery.Status.DEAD).count())
        yield gauge
