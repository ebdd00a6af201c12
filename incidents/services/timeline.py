"""The incident timeline: append-only events, notes and stars.

timeline_add_event() is the one way anything writes a timeline (a public
contract other apps use; keep the name)."""

from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from opsconsole import audit
from opsconsole.bulk import insert_many
from opsconsole.roles import check_capability

from ..models import PASSIVE_KINDS, EventKind, EventStar, Incident, TimelineEvent
from .rendering import render_markdown, sanitise_html


def timeline_add_event(
    *,
    incident: Incident,
    kind: str,
    text: str,
    actor=None,
    occurred_at: datetime | None = None,
    data: dict | None = None,
    corrects: TimelineEvent | None = None,
    author_label: str = "",
    activity: bool = True,
    html: str | None = None,
) -> TimelineEvent:
    """Append one event to an incident's timeline and return it.

    Guarantees: the row is never updated or deleted afterwards (the database
    refuses it); `text` is kept as written and rendered to sanitised HTML
    once; `recorded_at` is now while `occurred_at` may be earlier (back-dated
    notes). Every kind but nudges/notifications counts as activity for the
    quiet-incident nudge (`activity=False`: the caller has just set the
    incident's last_activity_at itself, so one UPDATE fewer). Runs in the
    caller's transaction if there is one. `html`: the text's HTML when the
    caller composed both from the same data (parsing a long generated list
    back from Markdown cost milliseconds); it is sanitised all the same.
    """
    if kind not in EventKind.values:
        raise ValueError(f"unknown timeline event kind {kind!r}; one of {EventKind.values}")
    if corrects is not None and corrects.incident_id != incident.pk:
        raise ValidationError("A correction must point at an event of the same incident.")
    now = timezone.now()
    is_user = actor is not None and getattr(actor, "is_authenticated", False)
    # No savepoint: the writes succeed together or fail the caller's
    # transaction with them (two round trips fewer per event).
    with transaction.atomic(savepoint=False):
        event = TimelineEvent.objects.create(
            incident=incident,
            kind=kind,
            author=actor if is_user else None,
            author_label=author_label or ("" if is_user else str(actor or "system")),
            text=text or "",
            html=render_markdown(text) if html is None else sanitise_html(html),
            occurred_at=occurred_at or now,
            recorded_at=now,
            corrects=corrects,
            data=data or {},
        )
        if activity and kind not in PASSIVE_KINDS:
            Incident.objects.filter(pk=incident.pk).update(last_activity_at=now)
        audit.record(
            actor if is_user else None,
            "incident.event_add",
            incident,
            after={"event": event.pk, "kind": kind, "corrects": corrects.pk if corrects else None},
        )
    return event


def timeline_add_events(events: list[dict]) -> list[TimelineEvent]:
    """Append many system events at once (sweeps: escalation of hundreds of
    incidents), with the guarantees of timeline_add_event — append-only rows,
    sanitised HTML, activity time moved, one audit entry per event — in a
    constant number of statements. Each dict: incident, kind, text, and
    optionally occurred_at, data, author_label (no actor: system events), and
    audit: (action, after) when the event is the record of the caller's own
    action (an escalation): its one audit entry then names that action, so a
    sweep writes one entry per thing it did, not two."""
    if not events:
        return []
    kinds = set(EventKind.values)  # a property that builds a new list at each call
    for spec in events:
        if spec["kind"] not in kinds:
            raise ValueError(f"unknown timeline event kind {spec['kind']!r}; one of {EventKind.values}")
    now = timezone.now()
    rendered: dict[str, str] = {}
    rows = []
    for spec in events:
        text = spec.get("text") or ""
        if text not in rendered:
            rendered[text] = render_markdown(text)
        rows.append(
            TimelineEvent(
                incident=spec["incident"],
                kind=spec["kind"],
                author_label=spec.get("author_label") or "system",
                text=text,
                html=rendered[text],
                occurred_at=spec.get("occurred_at") or now,
                recorded_at=now,
                data=spec.get("data") or {},
            )
        )
    with transaction.atomic():
        created = insert_many(rows)
        active = {e.incident_id for e in created if e.kind not in PASSIVE_KINDS}
        if active:
            Incident.objects.filter(pk__in=active).update(last_activity_at=now)
        audit.record_many((None, *_audited_as(spec, event)) for spec, event in zip(events, created, strict=True))
    return created


def _audited_as(spec: dict, event: TimelineEvent) -> tuple:
    action, extra = spec.get("audit") or ("incident.event_add", {"corrects": None})
    return action, event.incident, None, {"event": event.pk, "kind": event.kind, **extra}


@transaction.atomic
def incident_add_note(
    *,
    incident: Incident,
    actor,
    text: str,
    occurred_at: datetime | None = None,
    corrects: TimelineEvent | None = None,
) -> TimelineEvent:
    """A Markdown note, optionally back-dated (never into the future) or
    correcting an earlier event."""
    check_capability(actor, "incident.note")
    if not (text or "").strip():
        raise ValidationError("Write something in the note.")
    now = timezone.now()
    if occurred_at is not None:
        if occurred_at > now + timedelta(minutes=1):
            raise ValidationError("A note cannot happen in the future.")
        if occurred_at < incident.declared_at - timedelta(days=30):
            raise ValidationError("A note can be back-dated at most 30 days before the incident.")
    return timeline_add_event(
        incident=incident,
        kind=EventKind.NOTE,
        text=text,
        actor=actor,
        occurred_at=occurred_at,
        corrects=corrects,
    )


@transaction.atomic
def event_set_star(*, event: TimelineEvent, actor, starred: bool) -> bool:
    """Star or unstar a key event for the review. Idempotent: returns the new state."""
    check_capability(actor, "incident.note")
    if starred:
        _, created = EventStar.objects.get_or_create(event=event, defaults={"starred_by": actor})
        changed = created
    else:
        changed = EventStar.objects.filter(event=event).delete()[0] > 0
    if changed:
        audit.record(
            actor,
            "incident.event_star" if starred else "incident.event_unstar",
            event.incident,
            after={"event": event.pk},
        )
    return starred
