"""A handoff as Markdown, in the layout of the seeds' "On-Call Handoff" template."""

import datetime
import zoneinfo

from django.utils import timezone

from .handoffs import CONFIRMATIONS, STATUS_LINES
from .models import Handoff


def _cell(text: str) -> str:
    # A pipe or newline would break the table row.
    return " ".join(str(text or "").replace("|", "\\|").split())


def _fmt(value: datetime.datetime | str | None, tz: zoneinfo.ZoneInfo) -> str:
    if not value:
        return ""
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    return timezone.localtime(value, timezone=tz).strftime("%Y-%m-%d %H:%M")


def to_markdown(handoff: Handoff, tz_name: str = "UTC") -> str:
    tz = zoneinfo.ZoneInfo(tz_name)
    status = handoff.system_status or {}
    lines = [
        "## On-Call Handoff",
        "",
        f"**From**: {handoff.outgoing} | **To**: {handoff.incoming or '—'}",
        f"**Period**: {_fmt(handoff.period_start, tz)} to {_fmt(handoff.period_end, tz)} ({tz_name})",
        f"**Rotation**: {handoff.rotation.name}",
        "",
        "### System Status",
    ]
    lines += [f"- [{'x' if status.get(key) else ' '}] {label}" for key, label in STATUS_LINES]
    for check in status.get("checks", []):
        lines.append(f"  - {check['state'].upper()}: {check['name']} ({check['service']})")
    lines += [
        "",
        "### Outstanding Issues",
        "| Issue | Severity | Status | Notes |",
        "|-------|----------|--------|-------|",
    ]
    for item in handoff.items.all():
        state = f"{item.status} (closed)" if item.closed else item.status
        lines.append(f"| {_cell(item.title)} | {_cell(item.severity)} | {_cell(state)} | {_cell(item.notes)} |")
    lines += ["", "### Scheduled Tasks", "| Task | Time | Impact |", "|------|------|--------|"]
    for row in handoff.scheduled:
        lines.append(f"| {_cell(row.get('task'))} | {_fmt(row.get('time'), tz)} | {_cell(row.get('impact'))} |")
    lines += ["", "### Recent Changes"]
    lines += [f"- {line}" for line in handoff.recent_changes.splitlines() if line.strip()] or ["- None"]
    lines += [f"- {row['what']} ({row.get('status', '')}) by {row.get('by', '')}" for row in handoff.activity]
    lines += ["", "### Known Issues to Watch"]
    lines += [f"- {line}" for line in handoff.known_issues.splitlines() if line.strip()] or ["- None"]
    lines += ["", "### Handoff Confirmed"]
    lines += [f"- [{'x' if key in handoff.confirmations else ' '}] {label}" for key, label in CONFIRMATIONS]
    if handoff.acknowledged_at:
        lines.append(f"\nConfirmed by {handoff.acknowledged_by} at {_fmt(handoff.acknowledged_at, tz)}.")
    thread = list(handoff.messages.all())
    if thread:
        lines += ["", "### Questions and Answers"]
        lines += [
            f"- {m.get_kind_display()} from {m.author} at {_fmt(m.created_at, tz)}: {' '.join(m.text.split())}"
            for m in thread
        ]
    return "\n".join(lines) + "\n"
