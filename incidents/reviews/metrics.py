"""Review figures for /metrics, read from the database at scrape time
(two queries per scrape)."""

from collections.abc import Iterable

from django.db.models import Count, Q
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric


class ReviewsCollector:
    def collect(self) -> Iterable[Metric]:
        from .models import CLOSED_ACTION_STATUSES, ActionItem, Review, ReviewStatus

        today = timezone.localdate()
        by_status = GaugeMetricFamily("opsconsole_reviews", "Post-incident reviews, by status.", labels=["status"])
        counts = dict(Review.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
        for status in ReviewStatus.values:
            by_status.add_metric([status], counts.get(status, 0))
        yield by_status
        overdue = Review.objects.exclude(status=ReviewStatus.PUBLISHED).filter(due_date__lt=today).count()
        yield GaugeMetricFamily(
            "opsconsole_reviews_overdue", "Unpublished post-incident reviews past their due date.", value=overdue
        )
        items = ActionItem.objects.aggregate(
            open=Count("id", filter=~Q(status__in=CLOSED_ACTION_STATUSES)),
            overdue=Count("id", filter=~Q(status__in=CLOSED_ACTION_STATUSES) & Q(due_date__lt=today)),
        )
        yield GaugeMetricFamily(
            "opsconsole_action_items_open", "Open or in-progress post-incident action items.", value=items["open"]
        )
        yield GaugeMetricFamily(
            "opsconsole_action_items_overdue", "Open action items past their due date.", value=items["overdue"]
        )


COLLECTOR = ReviewsCollector()
