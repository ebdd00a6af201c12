"""A review as Markdown, in the shape of the seeds' "Post-Incident Review
Template" (001): incident id, duration, impact, timeline, root cause, action
items as a checklist, lessons learned — plus the other sections.

Times are the incident's own (the events' `occurred_at`), written in UTC so
that the document reads the same wherever it is opened.
"""

from datetime import UTC, datetime

from .models import SECTIONS, ActionItem, ActionStatus, Review


def _utc(value: str | datetime | None) -> str:
    if not value:
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _first_line(text: str) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line[:300]


def action_item_line(item: ActionItem) -> str:
    box = "x" if item.status == ActionStatus.DONE else " "
    parts = [
        f"owner {item.owner}" if item.owner else "no owner",
        f"due {item.due_date:%Y-%m-%d}" if item.due_date else "no due date",
        item.get_priority_display().split(" ")[0],
        item.get_status_display().lower(),
    ]
    if item.status == ActionStatus.WONT_DO:
        parts[-1] += f": {item.wont_do_reason}"
    links = []
    if item.tracker_url:
        links.append(f"[tracker]({item.tracker_url})")
    if item.change_url:
        links.append(f"[changes]({item.change_url})")
    if item.runbook_id:
        links.append(f"runbook “{item.runbook}”")
    if item.checklist_template_id:
        links.append(f"checklist “{item.checklist_template}”")
    tail = f" — {', '.join(links)}" if links else ""
    return f"- [{box}] {item.title} ({'; '.join(parts)}){tail}"


def review_markdown(review: Review, events: list, items: list[ActionItem]) -> str:
    p = review.prefill or {}
    phases = p.get("phases", {})
    incident = review.incident
    lines = [
        f"# Post-Incident Review: {incident.reference} — {incident.title}",
        "",
        f"**Incident ID**: {incident.reference}  ",
        f"**Severity**: {p.get('severity', '')}  ",
        f"**Duration**: {_utc(p.get('declared_at'))} to {_utc(p.get('resolved_at'))} ({phases.get('total', '—')})  ",
        f"**Phases**: to acknowledge {p.get('phases', {}).get('to_acknowledge', '—')}, "
        f"to mitigate {p.get('phases', {}).get('to_mitigate', '—')}, "
        f"to resolve {p.get('phases', {}).get('to_resolve', '—')}  ",
        f"**Impact**: {_first_line(review.customer_impact) or p.get('impact') or '—'}  ",
        f"**Commander**: {p.get('commander') or '—'}; **responders**: {', '.join(p.get('responders', [])) or '—'}  ",
        f"**Services**: {', '.join(p.get('services', [])) or '—'}  ",
        f"**Alerts and checks**: {', '.join(p.get('signals', [])) or '—'}  ",
        f"**Review**: {review.get_status_display()} (version {review.version})"
        + (f", approved by {review.approved_by}" if review.approved_by else "")
        + (f", published {_utc(review.published_at)}" if review.published_at else ""),
        "",
    ]
    for name, label, _required in SECTIONS:
        lines.append(f"## {label}")
        lines.append("")
        if name == "timeline_notes":
            for event in events:
                who = event.author or event.author_label or "system"
                lines.append(f"- {_utc(event.occurred_at)} — {_first_line(event.text)} ({who})")
            if events:
                lines.append("")
        if name == "action_items_notes":
            for item in items:
                lines.append(action_item_line(item))
            if items:
                lines.append("")
        text = getattr(review, name).strip()
        if text:
            lines.append(text)
            lines.append("")
        elif not (name == "timeline_notes" and events) and not (name == "action_items_notes" and items):
            lines.append("_(empty)_")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
