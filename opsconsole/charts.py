"""Server-rendered SVG charts: the one chart helper every page uses.

A `Chart` holds labelled points (x labels, one or more series) and draws
itself as SVG with axes, unit-labelled y ticks, spaced x (date) labels and
optional threshold lines. It also gives the same numbers as a table (the
text alternative shown under the chart) and as CSV rows.

CSP: no inline styles. Colours come from classes (`.chart .s0` … in
static/css/console.css); geometry from SVG attributes. Every text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from html import escape

from django.utils.safestring import SafeString

PALETTE_SIZE = 6


@dataclass
class Series:
    name: str
    values: list[float | None]


@dataclass
class Threshold:
    value: float
    label: str


@dataclass
class Chart:
    """kind: "line", "bar" (stacked when there are several series) or "hbar"
    (horizontal bars, one per label: rankings such as top services)."""

    slug: str
    title: str
    labels: list[str]
    series: list[Series]
    unit: str = ""
    kind: str = "line"
    thresholds: list[Threshold] = field(default_factory=list)
    description: str = ""
    decimals: int = 0
    # Counts (incidents, recurrences): the y ticks are whole numbers too, not 1.2 or 3.8.
    counts: bool = False

    # --- numbers ---------------------------------------------------------

    def fmt(self, value: float | None) -> str:
        if value is None:
            return "—"
        text = f"{value:.{self.decimals}f}"
        return f"{text} {self.unit}".strip() if self.unit and self.unit != "%" else f"{text}{self.unit}"

    def _top(self) -> float:
        if self.kind == "bar":
            totals = [sum(s.values[i] or 0 for s in self.series) for i in range(len(self.labels))]
        else:
            totals = [v for s in self.series for v in s.values if v is not None]
        totals += [t.value for t in self._drawn_thresholds(max(totals, default=0))]
        top = nice_ceiling(max(totals, default=0))
        if self.counts and top % 4:
            # Four tick intervals: a top of 5 or 10 would give fractions.
            top = 4.0 * max(1, math.ceil(max(totals, default=0) / 4))
        return top

    def _drawn_thresholds(self, data_top: float) -> list[Threshold]:
        """The thresholds near the data (at most twice its peak): a critical
        line at 2,000 ms would flatten 10 ms latencies into the axis. The
        others are named above the plot instead."""
        return [t for t in self.thresholds if t.value <= 2 * data_top]

    @property
    def empty(self) -> bool:
        return not self.labels or all(v is None or v == 0 for s in self.series for v in s.values)

    def table(self) -> dict:
        """The text alternative: a header row and one row per label."""
        return {
            "header": ["", *[s.name for s in self.series]],
            "rows": [[label, *[self.fmt(s.values[i]) for s in self.series]] for i, label in enumerate(self.labels)],
        }

    def csv_rows(self) -> list[list]:
        unit = f" ({self.unit})" if self.unit else ""
        rows: list[list] = [["label", *[f"{s.name}{unit}" for s in self.series]]]
        for i, label in enumerate(self.labels):
            rows.append([label, *["" if s.values[i] is None else round(s.values[i], 3) for s in self.series]])
        return rows

    # --- drawing ---------------------------------------------------------

    def svg(self, width: int = 720, height: int = 220) -> SafeString:
        if self.kind == "hbar":
            return _hbar(self, width)
        return _xy(self, width, height)


def nice_ceiling(value: float) -> float:
    """The smallest 1/2/5 × 10^n at or above value (axis tops read well)."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        top = step * 10**exponent
        if top >= value - 1e-9:
            return float(top)
    return float(10 ** (exponent + 1))


def _label_step(count: int, room: int) -> int:
    return max(1, math.ceil(count / max(room, 1)))


def _xy(chart: Chart, width: int, height: int) -> SafeString:
    top = chart._top()
    ticks = [(top * i / 4, _tick(top * i / 4, chart)) for i in range(5)]
    # Room for the widest tick label ("20 incidents") at the 11px chart font.
    left = max(56, 10 + math.ceil(6.5 * max(len(label) for _, label in ticks)))
    above = [t.label for t in chart.thresholds if t.value > top]
    # A line of its own above the plot names the thresholds too high to draw.
    right, top_pad, bottom = 8, (24 if above else 10), 34
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    n = len(chart.labels)
    if n == 0:
        return SafeString('<p class="empty">No data for this period.</p>')

    def y(v: float) -> float:
        return top_pad + plot_h - (v / top) * plot_h

    out = [
        f'<svg class="chart chart-{escape(chart.kind)}" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-labelledby="chart-{escape(chart.slug)}-title">'
        f'<title id="chart-{escape(chart.slug)}-title">{escape(chart.title)}'
        f"{': ' + escape(chart.description) if chart.description else ''}</title>"
    ]
    # y axis: 4 ticks with the unit
    for value, label in ticks:
        yy = y(value)
        out.append(f'<line class="grid" x1="{left}" y1="{yy:.1f}" x2="{width - right}" y2="{yy:.1f}"/>')
        out.append(f'<text class="tick" x="{left - 4}" y="{yy + 4:.1f}" text-anchor="end">{escape(label)}</text>')
    out.append(f'<line class="axis" x1="{left}" y1="{top_pad}" x2="{left}" y2="{top_pad + plot_h}"/>')
    out.append(f'<line class="axis" x1="{left}" y1="{top_pad + plot_h}" x2="{width - right}" y2="{top_pad + plot_h}"/>')
    slot = plot_w / n
    step = _label_step(n, plot_w // 70)
    for i, label in enumerate(chart.labels):
        if i % step == 0 or i == n - 1 and n <= 2:
            x = left + slot * i + slot / 2 if chart.kind == "bar" else left + (plot_w * i / max(n - 1, 1))
            out.append(
                f'<text class="tick" x="{x:.1f}" y="{height - bottom + 16}" text-anchor="middle">{escape(label)}</text>'
            )
    if chart.kind == "bar":
        bar_w = max(slot * 0.7, 1)
        for i in range(n):
            base = 0.0
            for si, series in enumerate(chart.series):
                v = series.values[i] or 0
                if v <= 0:
                    continue
                x = left + slot * i + (slot - bar_w) / 2
                y_top, y_base = y(base + v), y(base)
                out.append(
                    f'<rect class="s{si % PALETTE_SIZE}" x="{x:.1f}" y="{y_top:.1f}" width="{bar_w:.1f}" '
                    f'height="{max(y_base - y_top, 0.5):.1f}"><title>{escape(chart.labels[i])} {escape(series.name)}: '
                    f"{escape(chart.fmt(v))}</title></rect>"
                )
                base += v
    else:
        for si, series in enumerate(chart.series):
            points = [
                f"{left + (plot_w * i / max(n - 1, 1)):.1f},{y(v):.1f}"
                for i, v in enumerate(series.values)
                if v is not None
            ]
            if len(points) >= 2:
                out.append(f'<polyline class="line s{si % PALETTE_SIZE}" fill="none" points="{" ".join(points)}"/>')
            elif points:
                cx, cy = points[0].split(",")
                out.append(f'<circle class="s{si % PALETTE_SIZE}" cx="{cx}" cy="{cy}" r="3"/>')
    if above:
        out.append(
            f'<text class="threshold-label" x="{width - right - 2}" y="12" text-anchor="end">'
            f"above the chart: {escape(', '.join(above))}</text>"
        )
    for threshold in (t for t in chart.thresholds if t.value <= top):
        yy = y(threshold.value)
        out.append(f'<line class="threshold" x1="{left}" y1="{yy:.1f}" x2="{width - right}" y2="{yy:.1f}"/>')
        out.append(
            f'<text class="threshold-label" x="{width - right - 2}" y="{yy - 3:.1f}" text-anchor="end">'
            f"{escape(threshold.label)}</text>"
        )
    out.append("</svg>")
    return SafeString("".join(out))  # nosec B703  # every text is escaped above, the rest are numbers


def _tick(value: float, chart: Chart) -> str:
    # Two decimals at most, trailing zeros dropped: 0.25 stays 0.25 (not 0.2), 20.0 is 20.
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    if chart.unit == "%":
        return f"{text}%"
    return f"{text} {chart.unit}".strip()


def _hbar(chart: Chart, width: int) -> SafeString:
    row_h, left, right = 22, 160, 60
    n = len(chart.labels)
    if n == 0:
        return SafeString('<p class="empty">No data for this period.</p>')
    height = row_h * n + 8
    top = chart._top()
    values = chart.series[0].values if chart.series else []
    out = [
        f'<svg class="chart chart-hbar" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-labelledby="chart-{escape(chart.slug)}-title"><title id="chart-{escape(chart.slug)}-title">'
        f"{escape(chart.title)}</title>"
    ]
    plot_w = width - left - right
    for i, label in enumerate(chart.labels):
        v = values[i] or 0
        y = 4 + i * row_h
        w = max(plot_w * v / top, 1)
        short = label if len(label) <= 24 else label[:23] + "…"
        out.append(f'<text class="tick" x="{left - 6}" y="{y + 15}" text-anchor="end">{escape(short)}</text>')
        out.append(f'<rect class="s0" x="{left}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}"/>')
        out.append(f'<text class="tick" x="{left + w + 4:.1f}" y="{y + 15}">{escape(chart.fmt(v))}</text>')
    out.append("</svg>")
    return SafeString("".join(out))  # nosec B703  # every text is escaped above, the rest are numbers


def points(values: Sequence[float | None], width: float, height: float, pad: float = 2) -> str:
    """Polyline points scaled to a box: sparklines (no axes) use this directly."""
    numbers = [v for v in values if v is not None]
    if len(numbers) < 2:
        return ""
    top = max(numbers) or 1.0
    step = (width - 2 * pad) / (len(values) - 1)
    return " ".join(
        f"{pad + i * step:.1f},{height - pad - (v / top) * (height - 2 * pad):.1f}"
        for i, v in enumerate(values)
        if v is not None
    )


@dataclass
class HeatDay:
    day: date
    css: str  # a class of `legend` ("completed", "late", …): colours come from the stylesheet
    label: str  # what the day holds, in words (the cell's tooltip and the text alternative)


@dataclass
class Heatmap:
    """A calendar heatmap: one square per day, weeks as columns, Monday first.
    Axes: weekday names down the side, the first day of each month along the
    top; `legend` names every class (the page shows it under the drawing).
    Same text alternative (table) and CSV rows as Chart."""

    slug: str
    title: str
    days: list[HeatDay]
    legend: list[tuple[str, str]]  # (css class, label)
    description: str = ""

    def table(self) -> dict:
        names = dict(self.legend)
        return {
            "header": ["Day", "State", "Runs"],
            "rows": [[f"{d.day:%a %d %b %Y}", names.get(d.css, d.css), d.label] for d in self.days],
        }

    def csv_rows(self) -> list[list]:
        names = dict(self.legend)
        return [
            ["date", "state", "detail"],
            *[[d.day.isoformat(), names.get(d.css, d.css), d.label] for d in self.days],
        ]

    def svg(self, cell: int = 14, gap: int = 3) -> SafeString:
        if not self.days:
            return SafeString('<p class="empty">No data for this period.</p>')
        left, top, pitch = 34, 18, cell + gap
        first = self.days[0].day
        pad = first.weekday()
        weeks = (pad + len(self.days) + 6) // 7
        width, height = left + weeks * pitch + 4, top + 7 * pitch + 2
        slug = escape(self.slug)
        out = [
            f'<svg class="chart heatmap" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'role="img" aria-labelledby="chart-{slug}-title"><title id="chart-{slug}-title">{escape(self.title)}'
            f"{': ' + escape(self.description) if self.description else ''}</title>"
        ]
        for row, name in ((0, "Mon"), (2, "Wed"), (4, "Fri"), (6, "Sun")):
            out.append(
                f'<text class="tick" x="{left - 4}" y="{top + row * pitch + cell - 3}" text-anchor="end">{name}</text>'
            )
        for i, d in enumerate(self.days):
            column, row = divmod(pad + i, 7)
            x, y = left + column * pitch, top + row * pitch
            if d.day.day == 1 or i == 0:
                out.append(f'<text class="tick" x="{x}" y="{top - 6}">{d.day:%d %b}</text>')
            out.append(
                f'<rect class="hm-{escape(d.css)}" x="{x}" y="{y}" width="{cell}" height="{cell}" rx="2" '
                f'data-testid="heat-day"><title>{d.day:%a %d %b}: {escape(d.label)}</title></rect>'
            )
        out.append("</svg>")
        return SafeString("".join(out))  # nosec B703  # every text is escaped above, the rest are numbers
