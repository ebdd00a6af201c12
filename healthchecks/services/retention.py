"""Hourly rollups and pruning of raw results."""

from __future__ import annotations

import datetime
import logging

from django.conf import settings
from django.db.models import Avg, Count, Max, Min, Q
from django.db.models.functions import TruncHour
from django.utils import timezone

from ..models import (
    Check,
    CheckResult,
    CheckRollup,
)

log = logging.getLogger(__name__)


def rollup_results(*, now: datetime.datetime | None = None, hours: int = 3) -> int:
    """Aggregate the last `hours` complete hours of raw results into hourly
    rollups. Idempotent: re-running an hour rewrites the same row."""
    now = now or timezone.now()
    end = now.replace(minute=0, second=0, microsecond=0)
    start = end - datetime.timedelta(hours=hours)
    rows = (
        CheckResult.objects.filter(checked_at__gte=start, checked_at__lt=end)
        .annotate(hour=TruncHour("checked_at"))
        .values("check_ref_id", "hour")
        .annotate(
            count=Count("id"),
            ok_count=Count("id", filter=Q(state=Check.State.OK)),
            lmin=Min("latency_ms"),
            lavg=Avg("latency_ms"),
            lmax=Max("latency_ms"),
        )
        .order_by()
    )
    rollups = [
        CheckRollup(
            check_ref_id=row["check_ref_id"],
            hour=row["hour"],
            count=row["count"],
            ok_count=row["ok_count"],
            latency_min_ms=row["lmin"],
            latency_avg_ms=row["lavg"],
            latency_max_ms=row["lmax"],
        )
        for row in rows
    ]
    CheckRollup.objects.bulk_create(
        rollups,
        batch_size=1000,
        update_conflicts=True,
        unique_fields=["check_ref", "hour"],
        update_fields=["count", "ok_count", "latency_min_ms", "latency_avg_ms", "latency_max_ms"],
    )
    return len(rollups)


def prune_results(*, now: datetime.datetime | None = None) -> tuple[int, int]:
    """Delete raw results older than HEALTHCHECK_RAW_RETENTION_DAYS (after
    rolling them up) and rollups older than HEALTHCHECK_ROLLUP_RETENTION_DAYS."""
    now = now or timezone.now()
    rollup_results(now=now)
    raw_cutoff = now - datetime.timedelta(days=settings.HEALTHCHECK_RAW_RETENTION_DAYS)
    rollup_cutoff = now - datetime.timedelta(days=settings.HEALTHCHECK_ROLLUP_RETENTION_DAYS)
    raw, _ = CheckResult.objects.filter(checked_at__lt=raw_cutoff).delete()
    old, _ = CheckRollup.objects.filter(hour__lt=rollup_cutoff).delete()
    return raw, old
