"""SVG drawings for the board and the check page: no inline styles (CSP),
only SVG attributes and classes."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape as _escape

from django import template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from opsconsole import charts

register = template.Library()


@register.simple_tag
def sparkline(values: Sequence[float | None] | None) -> SafeString:
    """A 80×20 latency trend from the check's stored recent latencies.
    Built with an f-string: the board draws up to 10,000 of them."""
    points = charts.points(values or [], 80, 20)
    if not points:
        return SafeString('<span class="muted">—</span>')
    return SafeString(
        '<svg class="sparkline" width="80" height="20" viewBox="0 0 80 20" role="img" '
        f'aria-label="Latency trend, last {len(values)} results">'
        f'<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{points}"/></svg>'
    )  # nosec B703  # only numbers (the points and a count) are interpolated


@register.simple_tag
def latency_chart(series: Sequence[tuple] | None, width: int = 720, height: int = 180) -> SafeString:
    """Latency over time, drawn by the shared chart helper; series is [(time, ms)]."""
    values = [ms for _at, ms in series or []]
    if len([v for v in values if v is not None]) < 2:
        return SafeString('<p class="empty">Not enough results yet to draw a chart.</p>')
    first, last = series[0][0], series[-1][0]
    top = max(v for v in values if v is not None)
    same_day = first.date() == last.date()
    chart = charts.Chart(
        slug="latency",
        title="Latency",
        description=f"from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M}, max {top:.0f} ms",
        labels=[f"{at:%H:%M}" if same_day else f"{at:%m-%d %H:%M}" for at, _ms in series],
        series=[charts.Series("latency", values)],
        unit="ms",
    )
    return format_html('<div class="latency-chart">{}</div>', chart.svg(width, height))


_STATE_LABELS = {"ok": "OK", "warning": "Warning", "critical": "Critical", "unknown": "Unknown"}


@register.simple_tag
def board_rows(
    rows: Sequence[tuple], maintenance_checks: set[int], kind_labels: dict[str, str], show_details: bool = False
) -> SafeString:
    """The board's table rows, built in one pass (every value escaped).

    Rendering 10,000 rows through the template engine takes seconds; this
    keeps the board fast while the markup stays that of a plain table. The
    message column is the detailed message for roles with config.edit
    (`show_details`), else the summary, which quotes nothing fetched.
    """
    detail = reverse("healthchecks:detail", args=[0]).removesuffix("0/")
    out = []
    for check_id, name, kind, state, enabled, latency, message, recent, _sid, _sname, summary in rows:
        if not show_details:
            message = summary or ""
        flags = "" if enabled else ' <span class="muted">(paused)</span>'
        if check_id in maintenance_checks:
            flags += ' <span class="badge unknown">maintenance</span>'
        if len(message) > 90:
            message = message[:89] + "…"
        out.append(
            f'<tr data-state="{_escape(state)}">'
            f'<td><a href="{detail}{check_id}/">{_escape(name)}</a>{flags}</td>'
            f'<td><span class="badge {_escape(state)}">'
            f"{_STATE_LABELS.get(state, _escape(state))}</span></td>"
            f"<td>{_escape(kind_labels.get(kind, kind))}</td>"
            f"<td>{'—' if latency is None else f'{latency:.0f} ms'}</td>"
            f'<td>{sparkline(recent)}</td><td class="message-cell">{_escape(message)}</td></tr>'
        )
    return SafeString("\n".join(out))  # nosec B703  # every text cell is escaped by _escape above
