"""Reads of the health-check area: querysets with their joins applied, and
a fixed number of queries per page whatever the number of checks."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.core.paginator import Page, Paginator
from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone

from opsconsole.models import Service

from .models import Check, CheckResult, CheckRollup, CheckStateChange, MaintenanceWindow

BOARD_FIELDS = (
    "id",
    "name",
    "kind",
    "state",
    "enabled",
    "last_checked_at",
    "last_message",
    "last_summary",
    "last_latency_ms",
    "recent_latencies",
    "state_changed_at",
    "service__id",
    "service__name",
    "service__slug",
    "service_id",
)


@dataclass(frozen=True)
class BoardFilters:
    service: str = ""
    state: str = ""
    kind: str = ""
    q: str = ""

    def ignored(self) -> list[str]:
        """Unknown values the board could not filter by, said on the page (issue 13)."""
        unknown = [("State", self.state, Check.State.values), ("Type", self.kind, Check.Kind.values)]
        return [f"{label}: “{value}”" for label, value, known in unknown if value and value not in known]


# Worst first: the board's first page shows what needs attention.
SEVERITY = {"critical": 0, "warning": 1, "unknown": 2, "ok": 3}

# Rows per board page: a screen never renders thousands of rows.
BOARD_PAGE_SIZE = 100


def board_checks(filters: BoardFilters) -> QuerySet[Check]:
    """One query: the filtered checks with their service, worst state first
    (paused checks last), then by service and name."""
    severity = Case(
        *(When(state=state, then=Value(rank)) for state, rank in SEVERITY.items()),
        default=Value(len(SEVERITY)),
        output_field=IntegerField(),
    )
    checks = (
        Check.objects.select_related("service")
        .only(*BOARD_FIELDS)
        .alias(severity=severity)
        .order_by("-enabled", "severity", "service__name", "name", "id")
    )
    if filters.service:
        checks = checks.filter(service__slug=filters.service)
    if filters.state in Check.State.values:
        checks = checks.filter(state=filters.state)
    if filters.kind in Check.Kind.values:
        checks = checks.filter(kind=filters.kind)
    if filters.q:
        checks = checks.filter(Q(name__icontains=filters.q) | Q(service__name__icontains=filters.q))
    return checks


BOARD_COLUMNS = (
    "id",
    "name",
    "kind",
    "state",
    "enabled",
    "last_latency_ms",
    "last_message",
    "recent_latencies",
    "service_id",
    "service__name",
    "last_summary",
)


def board_page(filters: BoardFilters, page: str | int | None) -> tuple[Page, list[tuple[int, str, list[tuple]]]]:
    """Two queries (the count and one page of rows): the page and its rows
    grouped by service, [(service id, service name, [row tuples in
    BOARD_COLUMNS order])].

    Groups come in the order of their worst row and rows stay worst first,
    so the most severe check is at the top. Tuples, not model instances:
    building model objects for a page and rendering rows through the
    template engine is what made the board slow.

    The page's ids are picked in a subquery that sorts only the sort keys
    and the id (a deferred join): sorting every matching row with its
    message, details and latencies to keep 100 of them made the last page
    of 10,000 checks several times slower than the first.
    """
    ids = Paginator(board_checks(filters).values_list("id", flat=True), BOARD_PAGE_SIZE).get_page(page)
    rows = board_checks(BoardFilters()).filter(id__in=ids.object_list).values_list(*BOARD_COLUMNS)
    current = Page(list(rows), ids.number, ids.paginator)
    groups: dict[int, tuple[int, str, list[tuple]]] = {}
    for row in current.object_list:
        groups.setdefault(row[8], (row[8], row[9], []))[2].append(row)
    return current, list(groups.values())


def state_counts() -> dict[str, int]:
    """Enabled checks by state, every state present (one query)."""
    counts = dict.fromkeys(Check.State.values, 0)
    for row in Check.objects.filter(enabled=True).values("state").annotate(n=Count("id")).order_by():
        counts[row["state"]] = row["n"]
    return counts


def failing_checks(limit: int = 10) -> QuerySet[Check]:
    return (
        Check.objects.filter(enabled=True, state__in=[Check.State.CRITICAL, Check.State.WARNING])
        .select_related("service")
        .only(*BOARD_FIELDS)
        .order_by("-state", "-state_changed_at")[:limit]
    )


def active_maintenance(now: datetime.datetime | None = None) -> QuerySet[MaintenanceWindow]:
    now = now or timezone.now()
    return MaintenanceWindow.objects.filter(starts_at__lte=now, ends_at__gt=now).select_related("service", "check_ref")


def maintenance_targets(now: datetime.datetime | None = None) -> tuple[set[int], set[int]]:
    """(check ids, service ids) under an active maintenance window, one query."""
    rows = list(active_maintenance(now).values_list("check_ref_id", "service_id"))
    return {c for c, _ in rows if c}, {s for _, s in rows if s}


def services_for_filter() -> QuerySet[Service]:
    return Service.objects.order_by("name").only("name", "slug")


def check_for_page(pk: int) -> Check:
    return Check.objects.select_related("service").get(pk=pk)


def recent_results(check: Check, limit: int = 50) -> QuerySet[CheckResult]:
    return CheckResult.objects.filter(check_ref=check).order_by("-checked_at")[:limit]


def latency_series(check: Check, *, hours: int = 24, limit: int = 720) -> list[tuple[datetime.datetime, float | None]]:
    """Points for the check page's chart: raw results of the last hours, or
    hourly averages from the rollups when the raw rows were pruned."""
    since = timezone.now() - datetime.timedelta(hours=hours)
    points = list(
        CheckResult.objects.filter(check_ref=check, checked_at__gte=since)
        .order_by("-checked_at")
        .values_list("checked_at", "latency_ms")[:limit]
    )
    if not points:
        points = list(
            CheckRollup.objects.filter(check_ref=check).order_by("-hour").values_list("hour", "latency_avg_ms")[:limit]
        )
    points.reverse()
    return points


def state_history(check: Check, limit: int = 50) -> QuerySet[CheckStateChange]:
    return CheckStateChange.objects.filter(check_ref=check).order_by("-changed_at", "-id")[:limit]


def maintenance_for_check(check: Check) -> QuerySet[MaintenanceWindow]:
    now = timezone.now()
    return MaintenanceWindow.objects.filter(
        Q(check_ref=check) | Q(service_id=check.service_id), ends_at__gt=now
    ).order_by("starts_at")


def maintenance_windows(limit: int = 100) -> QuerySet[MaintenanceWindow]:
    return MaintenanceWindow.objects.select_related("service", "check_ref__service", "created_by")[:limit]
