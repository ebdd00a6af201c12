"""Trends for the manager view: weekly figures over a period, as charts.

Three queries whatever the data size: the period's incidents (a few
columns each, plus whether each is a recurrence), the top services, and the
SEV names. Percentiles are computed here rather than in SQL so that the same
code runs on PostgreSQL and on the SQLite database of `make run`.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import (
    BooleanField,
    Count,
    DateTimeField,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    OuterRef,
    Q,
    Value,
)
from django.utils import timezone

from opsconsole.charts import Chart, Series

from ..models import Incident, SeverityLevel
from ..selectors import visible_incidents
from .models import Recurrence

PERIODS = {4: "4 weeks", 12: "12 weeks", 26: "26 weeks", 52: "52 weeks"}
DEFAULT_WEEKS = 12
TOP_SERVICES = 8
WEEK_SECONDS = 7 * 86400


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


class Seconds(Func):
    """Seconds from `start` to `end` as a float (NULL when either is NULL),
    computed by the database so that thousands of rows load as plain numbers."""

    arity = 2
    output_field = FloatField()

    def __init__(self, end, start):
        super().__init__(end, start)

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(
            compiler, connection, template="EXTRACT(EPOCH FROM (%(expressions)s))::float8", arg_joiner=" - ", **extra
        )

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(
            compiler,
            connection,
            template="((julianday(%(expressions)s)) * 86400.0)",
            arg_joiner=") - julianday(",
            **extra,
        )


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
    now = timezone.now()
    origin = _aware(span.start)
    late = (
        Q(acknowledged_at__isnull=True, ack_due_at__lt=now)
        | Q(acknowledged_at__gt=F("ack_due_at"))
        | Q(resolved_at__isnull=True, resolve_due_at__lt=now)
        | Q(resolved_at__gt=F("resolve_due_at"))
    )
    rows = list(
        qs.annotate(
            offset=Seconds(F("declared_at"), Value(origin, output_field=DateTimeField())),
            ack_s=Seconds(F("acknowledged_at"), F("declared_at")),
            resolve_s=Seconds(F("resolved_at"), F("declared_at")),
            late=ExpressionWrapper(late, output_field=BooleanField()),
            recurs=Exists(Recurrence.objects.filter(incident_id=OuterRef("pk"))),
        ).values_list("offset", "severity_id", "ack_s", "resolve_s", "late", "recurs")
    )
    levels = list(SeverityLevel.objects.order_by("level").values_list("level", "name"))
    top = list(
        Incident.services.through.objects.filter(incident__in=qs)
        .values_list("service__name")
        .annotate(n=Count("id"))
        .order_by("-n", "service__name")[:TOP_SERVICES]
    )
    starts = span.week_starts
    labels = [f"{d:%b %d}" for d in starts]
    per_sev = {level: [0] * weeks for level, _ in levels}
    acks: list[list[float]] = [[] for _ in starts]
    resolves: list[list[float]] = [[] for _ in starts]
    breached = [0] * weeks
    totals = [0] * weeks
    recurrences = [0] * weeks
    for offset, sev, ack_s, resolve_s, is_late, recurs in rows:
        # Weeks counted from the period's first (local) Monday midnight.
        i = int(offset // WEEK_SECONDS)
        if not 0 <= i < weeks:
            continue
        totals[i] += 1
        per_sev.setdefault(sev, [0] * weeks)[i] += 1
        if ack_s is not None:
            acks[i].append(ack_s / 60)
        if resolve_s is not None:
            resolves[i].append(resolve_s / 3600)
        breached[i] += 1 if is_late else 0
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
            counts=True,
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
            counts=True,
            description="incidents matching an earlier one (same alert group or check)",
        ),
    ]
