"""The check page's latency chart, drawn by the shared helper (opsconsole.charts):
times along the bottom, milliseconds up the side, the warning and critical
thresholds as lines when they are latency thresholds."""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from django.utils import timezone

from opsconsole import charts

from .models import Check

# Kinds whose thresholds grade the latency (ms); the others grade a value
# (a query's result, days to certificate expiry) that this chart does not draw.
LATENCY_GRADED = {Check.Kind.HTTP, Check.Kind.TCP, Check.Kind.DNS, Check.Kind.REDIS}


def latency_chart(check: Check, series: Sequence[tuple[datetime.datetime, float | None]]) -> charts.Chart | None:
    values = [ms for _at, ms in series]
    if len([v for v in values if v is not None]) < 2:
        return None
    tz = timezone.get_current_timezone()
    times = [at.astimezone(tz) for at, _ms in series]
    same_day = times[0].date() == times[-1].date()
    thresholds = []
    if check.kind in LATENCY_GRADED:
        for value, name in ((check.warning_threshold, "warning"), (check.critical_threshold, "critical")):
            if value is not None:
                thresholds.append(charts.Threshold(value, f"{name} {value:g} ms"))
    top = max(v for v in values if v is not None)
    return charts.Chart(
        slug="latency",
        title=f"Latency of {check.name}",
        description=f"{times[0]:%Y-%m-%d %H:%M} to {times[-1]:%Y-%m-%d %H:%M} ({tz}), max {top:.0f} ms",
        labels=[f"{at:%H:%M}" if same_day else f"{at:%d %b %H:%M}" for at in times],
        series=[charts.Series("latency", values)],
        unit="ms",
        thresholds=thresholds,
    )


def latency_csv_rows(check: Check, series: Sequence[tuple[datetime.datetime, float | None]]):
    """The chart's points with full timestamps (the drawing's labels are short)."""
    for at, ms in series:
        yield [at.isoformat(), check.name, "" if ms is None else round(ms, 3)]
