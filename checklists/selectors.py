"""Reads of the checklists app: querysets with their joins, a constant
number of queries whatever the number of runs or items."""

import datetime
import statistics
from collections import Counter
from dataclasses import dataclass

from django.db.models import Count, F, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from opsconsole.charts import HeatDay, Heatmap

from .models import ChecklistRun, ChecklistTemplate, RunItem

Status = ChecklistRun.Status
State = RunItem.State
HISTORY_DAYS = 90


def runs_with_progress() -> QuerySet[ChecklistRun]:
    return ChecklistRun.objects.select_related("template", "signed_off_by", "started_by").annotate(
        total=Count("items"),
        done=Count("items", filter=~Q(items__state=State.OPEN)),
    )


def local_day_bounds(
    day: datetime.date | None = None,
) -> tuple[datetime.datetime, datetime.datetime]:
    """Start and end of a day in the active (viewer's) timezone."""
    tz = timezone.get_current_timezone()
    day = day or timezone.localdate()
    start = datetime.datetime.combine(day, datetime.time.min, tzinfo=tz)
    return start, start + datetime.timedelta(days=1)


@dataclass
class IndexRuns:
    today: list[ChecklistRun]
    open: list[ChecklistRun]
    missed: list[ChecklistRun]


def index_runs(now: datetime.datetime | None = None) -> IndexRuns:
    """Today's runs, every unfinished run, and runs missed in the last 7 days: one query."""
    now = now or timezone.now()
    start, end = local_day_bounds(timezone.localdate(now))
    runs = list(
        runs_with_progress()
        .filter(
            Q(created_at__gte=start, created_at__lt=end)
            | Q(status=Status.OPEN)
            | Q(status=Status.MISSED, created_at__gte=start - datetime.timedelta(days=7))
        )
        .order_by("-created_at", "-id")[:300]
    )
    # Each run is listed in one place: today's runs (any status) under
    # "Today", older ones under "Open" or "Missed" by their status.
    today = [run for run in runs if start <= run.created_at < end]
    earlier = [run for run in runs if not start <= run.created_at < end]
    return IndexRuns(
        today=today,
        open=[run for run in earlier if run.status == Status.OPEN],
        missed=[run for run in earlier if run.status == Status.MISSED],
    )


def active_templates() -> QuerySet[ChecklistTemplate]:
    return ChecklistTemplate.objects.filter(is_active=True).annotate(item_count=Count("items")).order_by("name")


def all_templates() -> QuerySet[ChecklistTemplate]:
    return ChecklistTemplate.objects.annotate(
        item_count=Count("items", distinct=True), schedule_count=Count("schedules", distinct=True)
    ).order_by("-is_active", "name")


def run_detail(pk: int) -> ChecklistRun:
    return ChecklistRun.objects.select_related("template", "started_by", "signed_off_by", "schedule").get(pk=pk)


def run_items(run_id: int) -> list[RunItem]:
    return list(
        RunItem.objects.filter(run_id=run_id)
        .select_related("ticked_by", "note_updated_by", "health_check")
        .order_by("order", "id")
    )


def progress_of(items: list[RunItem]) -> dict:
    return {
        "total": len(items),
        "done": sum(1 for item in items if item.is_done),
        "required_open": sum(1 for item in items if item.required and not item.is_done),
    }


# Overlap of the "changed since" window: a transaction that took its
# timestamp before another's but committed after it is still picked up.
POLL_OVERLAP = datetime.timedelta(seconds=5)


def changes_since(run_id: int, since: datetime.datetime) -> tuple[ChecklistRun | None, list[RunItem]]:
    """The run and its items changed after `since` (minus the overlap): two queries."""
    run = ChecklistRun.objects.select_related("signed_off_by").filter(pk=run_id).first()
    if run is None:
        return None, []
    items = list(
        RunItem.objects.filter(run_id=run_id, updated_at__gt=since - POLL_OVERLAP)
        .select_related("ticked_by", "note_updated_by", "health_check")
        .order_by("order", "id")
    )
    return run, items


def dashboard_panel_context(request: HttpRequest) -> dict:
    runs = index_runs()
    # Missed runs are named once, in the alert line; the list holds the rest of today's.
    missed = [run for run in runs.today if run.status == Status.MISSED] + runs.missed
    return {"today": [run for run in runs.today if run.status != Status.MISSED][:12], "missed": missed[:10]}


# --- History -------------------------------------------------------------------


HEAT_LEGEND = [("completed", "on time"), ("late", "late"), ("missed", "missed"), ("open", "open"), ("none", "no run")]


def _run_words(run: ChecklistRun) -> str:
    signed = f" (signed off by {run.signed_off_by})" if run.signed_off_by_id else ""
    return f"{run.title} {run.get_status_display().lower()}{signed}"


def _day_class(runs: list[ChecklistRun]) -> str:
    if not runs:
        return "none"
    if any(run.status == Status.MISSED for run in runs):
        return "missed"
    if any(run.status == Status.OPEN for run in runs):
        return "open"
    if any(run.completed_late for run in runs):
        return "late"
    return "completed"


def template_history(template: ChecklistTemplate, today: datetime.date | None = None) -> dict:
    """Heatmap, item statistics, median completion time and runs per person
    for the last 90 days: three queries."""
    today = today or timezone.localdate()
    first_day = today - datetime.timedelta(days=HISTORY_DAYS - 1)
    start, _ = local_day_bounds(first_day)
    runs = list(
        ChecklistRun.objects.filter(template=template, created_at__gte=start)
        .select_related("signed_off_by", "started_by")
        .order_by("created_at")
    )
    by_day: dict[datetime.date, list[ChecklistRun]] = {}
    for run in runs:
        by_day.setdefault(timezone.localdate(run.created_at), []).append(run)
    days = []
    for offset in range(HISTORY_DAYS):
        day = first_day + datetime.timedelta(days=offset)
        day_runs = by_day.get(day, [])
        css = _day_class(day_runs)
        label = ", ".join(_run_words(r) for r in day_runs) or "no run"
        days.append(HeatDay(day, css, label))
    # Pad the first week so that columns are weekdays (Monday first).
    padding = first_day.weekday()

    durations = [
        (run.signed_off_at - run.created_at).total_seconds()
        for run in runs
        if run.status == Status.COMPLETED and run.signed_off_at
    ]
    per_person = Counter(str(run.signed_off_by) for run in runs if run.signed_off_by_id)
    item_stats = list(
        RunItem.objects.filter(run__template=template, run__created_at__gte=start)
        .values("text")
        .annotate(
            runs=Count("id"),
            na=Count("id", filter=Q(state=State.NA)),
            late=Count(
                "id",
                filter=Q(ticked_at__gt=F("run__due_at")) | Q(state=State.OPEN, run__status=Status.MISSED),
            ),
        )
        .filter(Q(na__gt=0) | Q(late__gt=0))
        .order_by("-na", "-late", "text")[:10]
    )
    return {
        "days": days,
        "heatmap": Heatmap(
            slug="completion",
            title=f"{template.name}: completion per day",
            days=days,
            legend=HEAT_LEGEND,
            description=f"{HISTORY_DAYS} days from {first_day:%d %b %Y}, one square per day, Monday first",
        ),
        "padding": range(padding),
        "runs": runs,
        "counts": Counter(run.status for run in runs),
        "median_seconds": statistics.median(durations) if durations else None,
        "per_person": per_person.most_common(),
        "item_stats": item_stats,
        "first_day": first_day,
    }


def runs_for_export(template: ChecklistTemplate) -> QuerySet[ChecklistRun]:
    return runs_with_progress().filter(template=template).order_by("created_at")
