"""Trends for the manager view: weekly figures over a period, as charts.

Three queries whatever the data size: the period's incidents (a few
columns each, plus whether each is a recurrence), the top services, and the
SEV names. Percentiles are computed here rather than in SQL so that the same
code runs on PostgreSQL and on the SQLite database of `make run`.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from opsconsole.charts import Chart, Series
from opsconsole.models import Service

from ..models import Incident, SeverityLevel
from ..selectors import visible_incidents
from .models import Recurrence

PERIODS = {4: "4 weeks", 12: "12 weeks", 26: "26 weeks", 52: "52 weeks"}
DEFAULT_WEEKS = 12
TOP_SERVICES = 8


@dataclass
class Period:
    weeks: int
    start: date  # a Monday
    end: date  # exclusive

    @property
    def week_starts(self) -> list[date]:
        return [self.start + timedelta(weeks=i) for i in range(self.weeks)]


def period(weeks: int, today: date | None = None) -> Period:
    today = today or timezone.localdate()
    this_monday = today - timedelta(days=today.weekday())
    start = this_monday - timedelta(weeks=weeks - 1)
    return Period(weeks=weeks, start=start, end=this_monday + timedelta(weeks=1))


def percentile(values: list[float], p: float) -> float | None:
    """Linear interpolation between closest ranks (PostgreSQL's percentile_cont)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _aware(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def incidents_in(user, span: Period, service: str = ""):
    qs = visible_incidents(user).filter(declared_at__gte=_aware(span.start), declared_at__lt=_aware(span.end))
    if service:
        qs = qs.filter(
            Exists(Incident.services.through.objects.filter(incident_id=OuterRef("pk"), service__slug=service))
        )
    return qs


def build_charts(user, *, weeks: int = DEFAULT_WEEKS, service: str = "", today: date | None = None) -> list[Chart]:
    span = period(weeks, today)
    qs = incidents_in(user, span, service)
    rows = list(
        qs.annotate(recurs=Exists(Recurrence.objects.filter(incident_id=OuterRef("pk")))).values_list(
            "declared_at", "acknowledged_at", "resolved_at", "severity_id", "ack_due_at", "resolve_due_at", "recurs"
        )
    )
    levels = list(SeverityLevel.objects.order_by("level").values_list("level", "name"))
    top = list(
        Service.objects.filter(incidents__in=qs)
        .annotate(n=Count("incidents", filter=Q(incidents__in=qs)))
        .order_by("-n", "name")
        .values_list("name", "n")[:TOP_SERVICES]
    )
    starts = span.week_starts
    labels = [f"{d:%b %d}" for d in starts]
    index = {d: i for i, d in enumerate(starts)}
    now = timezone.now()
    per_sev = {level: [0] * weeks for level, _ in levels}
    acks: list[list[float]] = [[] for _ in starts]
    resolves: list[list[float]] = [[] for _ in starts]
    breached = [0] * weeks
    totals = [0] * weeks
    recurrences = [0] * weeks
    for declared, acked, resolved, sev, ack_due, resolve_due, recurs in rows:
        local = timezone.localtime(declared).date()
        i = index.get(local - timedelta(days=local.weekday()))
        if i is None:
            continue
        totals[i] += 1
        per_sev.setdefault(sev, [0] * weeks)[i] += 1
        if acked:
            acks[i].append((acked - declared).total_seconds() / 60)
        if resolved:
            resolves[i].append((resolved - declared).total_seconds() / 3600)
        if (acked or now) > ack_due or (resolved or now) > resolve_due:
            breached[i] += 1
        recurrences[i] += 1 if recurs else 0
    names = dict(levels)
    return [
        Chart(
            slug="incidents-per-week",
            title="Incidents per week by SEV",
            labels=labels,
            series=[
                Series(names.get(level, f"SEV-{level}"), [float(n) for n in counts])
                for level, counts in sorted(per_sev.items())
            ],
            unit="incidents",
            kind="bar",
            description=f"{sum(totals)} incidents in {weeks} weeks",
        ),
        Chart(
            slug="time-to-acknowledge",
            title="Time to acknowledge (minutes)",
            labels=labels,
            series=[
                Series("median", [percentile(v, 0.5) for v in acks]),
                Series("90th percentile", [percentile(v, 0.9) for v in acks]),
            ],
            unit="min",
            decimals=1,
        ),
        Chart(
            slug="time-to-resolve",
            title="Time to resolve (hours)",
            labels=labels,
            series=[
                Series("median", [percentile(v, 0.5) for v in resolves]),
                Series("90th percentile", [percentile(v, 0.9) for v in resolves]),
            ],
            unit="h",
            decimals=1,
        ),
        Chart(
            slug="breach-rate",
            title="Response-target breach rate",
            labels=labels,
            series=[Series("breached", [100.0 * b / t if t else None for b, t in zip(breached, totals, strict=True)])],
            unit="%",
            decimals=0,
            description="share of the week's incidents acknowledged or resolved later than their SEV's target",
        ),
        Chart(
            slug="top-services",
            title="Top services by incident count",
            labels=[name for name, _ in top],
            series=[Series("incidents", [float(n) for _, n in top])],
            unit="",
            kind="hbar",
        ),
        Chart(
            slug="recurrences",
            title="Recurrences per week",
            labels=labels,
            series=[Series("recurrences", [float(n) for n in recurrences])],
            unit="",
            kind="bar",
            description="incidents matching an earlier one (same alert group or check)",
        ),
    ]
