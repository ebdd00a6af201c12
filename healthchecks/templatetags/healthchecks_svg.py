"""SVG drawings for the board and the check page: no inline styles (CSP),
only SVG attributes and classes."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape as _escape

from django import template
from django.urls import reverse
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


_STATE_LABELS = {"ok": "OK", "warning": "Warning", "critical": "Critical", "unknown": "Unknown"}


@register.simple_tag
def board_rows(
    rows: Sequence[tuple],
    maintenance_checks: set[int],
    kind_labels: dict[str, str],
    show_details: bool = False,
    row_actions: Sequence[tuple[str, str]] = (),
) -> SafeString:
    """The board's table rows, built in one pass (every value escaped).

    Rendering 10,000 rows through the template engine takes seconds; this
    keeps the board fast while the markup stays that of a plain table. The
    message column is the detailed message for roles with config.edit
    (`show_details`), else the summary, which quotes nothing fetched.
    A failing (warning or critical) row also offers `row_actions`, the
    (label, href template) pairs of healthchecks.hooks.board_row_actions.
    """
    failing_links = [(_escape(label), _escape(href)) for label, href in row_actions]
    detail = reverse("healthchecks:detail", args=[0]).removesuffix("0/")
    out = []
    for check_id, name, kind, state, enabled, latency, message, recent, _sid, _sname, summary in rows:
        if not show_details:
            message = summary or ""
        flags = "" if enabled else ' <span class="muted">(paused)</span>'
        if check_id in maintenance_checks:
            flags += ' <span class="badge unknown">maintenance</span>'
        if failing_links and state in ("warning", "critical"):
            flags += "".join(
                f' <a class="button" href="{href.replace("{check_id}", str(int(check_id)))}">{label}</a>'
                for label, href in failing_links
            )
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
