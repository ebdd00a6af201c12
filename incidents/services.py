"""Writes for incidents. Each service owns its transaction and audit entry.

Public contract used by other areas (keep the names):
- timeline_add_event(): the one way anything writes an incident timeline;
- open_or_update_from_source(): alerts and check state changes open or
  update the incident of their dedup key.
"""

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

import markdown
import nh3
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from opsconsole import audit, notifications
from opsconsole.models import Service
from opsconsole.roles import check_capability, has_capability

from . import metrics, signals
from .models import (
    OPEN_STATUSES,
    PASSIVE_KINDS,
    AlertSeverityMapping,
    DailyCounter,
    EventKind,
    EventStar,
    Incident,
    IncidentSignal,
    SeverityLevel,
    Status,
    TimelineEvent,
)

logger = logging.getLogger(__name__)

# The seeds' table (001: "Incident Severity Levels"). The seeds give the
# response time only; the resolve targets are ours, editable by Managers.
DEFAULT_SEVERITY_LEVELS = [
    (1, "SEV-1", "Complete outage", "Platform down, data breach", 15, 4 * 60),
    (2, "SEV-2", "Major degradation", "Payment processing failed", 30, 8 * 60),
    (3, "SEV-3", "Partial degradation", "Slow response times", 2 * 60, 24 * 60),
    (4, "SEV-4", "Minor issue", "Non-critical bug", 4 * 60, 72 * 60),
]
# Alertmanager `severity` label values seen in the seeds (critical/high/medium) and common ones.
DEFAULT_ALERT_MAPPINGS = {
    "critical": 1,
    "page": 1,
    "high": 2,
    "error": 2,
    "major": 2,
    "warning": 3,
    "medium": 3,
    "minor": 4,
    "low": 4,
    "info": 4,
}

TRANSITIONS: dict[str, frozenset[str]] = {
    Status.TRIGGERED: frozenset({Status.ACKNOWLEDGED}),
    Status.ACKNOWLEDGED: frozenset({Status.MITIGATED, Status.RESOLVED}),
    Status.MITIGATED: frozenset({Status.RESOLVED}),
    Status.RESOLVED: frozenset({Status.CLOSED}),
    Status.CLOSED: frozenset(),
}
PHASE_FIELDS = {
    Status.ACKNOWLEDGED: "acknowledged_at",
    Status.MITIGATED: "mitigated_at",
    Status.RESOLVED: "resolved_at",
    Status.CLOSED: "closed_at",
}
INCIDENT_FIELDS = (
    "reference",
    "title",
    "summary",
    "severity_id",
    "status",
    "commander_id",
    "comms_lead_id",
    "tags",
    "customer_impact",
    "restricted",
    "dedup_key",
)

_MD_TAGS = set(nh3.ALLOWED_TAGS) - {"img", "area", "map"}


class TransitionRefused(Exception):
    """A status change the state machine (or a concurrent change) does not allow."""


class ConfirmationRequired(Exception):
    """Resolving while alerts still fire: the caller must confirm."""

    def __init__(self, firing: list[IncidentSignal]):
        self.firing = firing
        super().__init__(f"{len(firing)} alert(s) still firing")


# --- helpers ---------------------------------------------------------------


def render_markdown(text: str) -> str:
    """Markdown → HTML that is safe to show (no script, no images, no inline styles)."""
    html = markdown.markdown(text or "", extensions=["fenced_code", "tables", "sane_lists", "nl2br"])
    return nh3.clean(
        html,
        tags=_MD_TAGS,
        link_rel="noopener noreferrer nofollow",
        url_schemes={"http", "https", "mailto"},
    )


def ensure_defaults() -> None:
    """Create the SEV table and alert mappings if missing. Idempotent.

    The migration seeds them too; this covers databases flushed by
    transactional tests and fresh `make run` installs alike.
    """
    if SeverityLevel.objects.count() >= len(DEFAULT_SEVERITY_LEVELS):
        return
    for level, name, definition, examples, ack, resolve in DEFAULT_SEVERITY_LEVELS:
        SeverityLevel.objects.get_or_create(
            level=level,
            defaults={
                "name": name,
                "definition": definition,
                "examples": examples,
                "ack_target_minutes": ack,
                "resolve_target_minutes": resolve,
            },
        )
    for value, level in DEFAULT_ALERT_MAPPINGS.items():
        AlertSeverityMapping.objects.get_or_create(label_value=value, defaults={"severity_id": level})


def severity_level(level: int | SeverityLevel) -> SeverityLevel:
    if isinstance(level, SeverityLevel):
        return level
    ensure_defaults()
    try:
        return SeverityLevel.objects.get(pk=int(level))
    except (SeverityLevel.DoesNotExist, TypeError, ValueError):
        raise ValidationError(f"Unknown SEV level: {level!r}.") from None


def can_manage(user, incident: Incident) -> bool:
    """PRODUCT.md: acknowledge, change SEV/status, assign roles — Commanders,
    Managers and Admins on any incident; SREs only on incidents they are assigned to."""
    if has_capability(user, "incident.manage"):
        return True
    return has_capability(user, "incident.manage_assigned") and incident.is_assigned(user)


def check_can_manage(user, incident: Incident) -> None:
    if not can_manage(user, incident):
        raise PermissionDenied(
            "Only the incident's commander, comms lead or responders (or an Incident "
            "Commander, Manager or Admin) may do this."
        )


def incident_url(incident: Incident) -> str:
    return settings.CONSOLE_BASE_URL + reverse("incidents:detail", args=[incident.reference])


def _next_reference(when: datetime) -> str:
    """INC-YYYY-MM-DD-NNN, unique even for concurrent declares.

    One atomic upsert: the first declare of a day inserts the counter row,
    the others increment it. The row lock taken by ON CONFLICT DO UPDATE
    serialises concurrent declares (the second waits for the first to
    commit and then reads its value), so no two get the same number; the
    unique constraint on Incident.reference is the backstop.
    """
    day = timezone.localtime(when, timezone=timezone.get_fixed_timezone(0)).date()
    table = DailyCounter._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (day, last) VALUES (%s, 1) "
            f"ON CONFLICT (day) DO UPDATE SET last = {table}.last + 1 RETURNING last",
            [day],
        )
        number = cursor.fetchone()[0]
    return f"INC-{day:%Y-%m-%d}-{number:03d}"


def _snapshot(incident: Incident) -> dict:
    return audit.snapshot(incident, INCIDENT_FIELDS)


def _participant_emails(incident: Incident) -> list[str]:
    people = [incident.commander, incident.comms_lead, *incident.responders.all()]
    return sorted({p.email for p in people if p is not None and p.email})


def _announce(event: str, incident: Incident, title: str, text: str, *, on_call: bool = False) -> None:
    """Slack-compatible webhook (the service's or the global one) and email,
    queued by the notifications app in the caller's transaction and sent by
    Celery after commit with retries; dead letters are listed in the UI.
    `on_call`: email whoever is on call for the first service (declares)."""
    service = incident.services.first()
    url = reverse("incidents:detail", args=[incident.reference])
    if on_call:
        notifications.notify_on_call(event=event, title=title, text=text, url=url, service=service)
    else:
        notifications.notify(
            event=event,
            title=title,
            text=text,
            url=url,
            service=service,
            emails=_participant_emails(incident),
        )


def _resolve_services(services: Iterable) -> tuple[list[Service], list[str]]:
    """Service objects, pks, slugs or names → (services, names not found)."""
    found, missing = [], []
    for item in services or ():
        if isinstance(item, Service):
            found.append(item)
            continue
        value = str(item).strip()
        if not value:
            continue
        service = (
            Service.objects.filter(slug=value).first()
            or Service.objects.filter(name__iexact=value).first()
            or (Service.objects.filter(pk=int(value)).first() if value.isdigit() else None)
        )
        (found.append(service) if service else missing.append(value))
    return found, missing


# --- timeline ---------------------------------------------------------------


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
) -> TimelineEvent:
    """Append one event to an incident's timeline and return it.

    Guarantees: the row is never updated or deleted afterwards (the database
    refuses it); `text` is kept as written and rendered to sanitised HTML
    once; `recorded_at` is now while `occurred_at` may be earlier (back-dated
    notes). Every kind but nudges/notifications counts as activity for the
    quiet-incident nudge. Runs in the caller's transaction if there is one.
    """
    if kind not in EventKind.values:
        raise ValueError(f"unknown timeline event kind {kind!r}; one of {EventKind.values}")
    if corrects is not None and corrects.incident_id != incident.pk:
        raise ValidationError("A correction must point at an event of the same incident.")
    now = timezone.now()
    is_user = actor is not None and getattr(actor, "is_authenticated", False)
    with transaction.atomic():
        event = TimelineEvent.objects.create(
            incident=incident,
            kind=kind,
            author=actor if is_user else None,
            author_label=author_label or ("" if is_user else str(actor or "system")),
            text=text or "",
            html=render_markdown(text),
            occurred_at=occurred_at or now,
            recorded_at=now,
            corrects=corrects,
            data=data or {},
        )
        if kind not in PASSIVE_KINDS:
            Incident.objects.filter(pk=incident.pk).update(last_activity_at=now)
        audit.record(
            actor if is_user else None,
            "incident.event_add",
            incident,
            after={"event": event.pk, "kind": kind, "corrects": corrects.pk if corrects else None},
        )
    return event


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


# --- lifecycle -----------------------------------------------------------------


def incident_declare(
    *,
    actor,
    title: str,
    severity: int | SeverityLevel,
    summary: str = "",
    services: Iterable = (),
    tags: Iterable[str] = (),
    customer_impact: str = "",
    restricted: bool = False,
    commander=None,
    dedup_key: str = "",
    source_kind: str = "manual",
    author_label: str = "",
) -> Incident:
    """Open an incident with a fresh INC-YYYY-MM-DD-NNN id, its deadlines and a
    "declared" event. `actor` None means the system (alerts, checks)."""
    if actor is not None:
        check_capability(actor, "incident.declare")
    title = (title or "").strip()
    if not title:
        raise ValidationError("An incident needs a title.")
    level = severity_level(severity)
    found, _missing = _resolve_services(services)
    with transaction.atomic():
        now = timezone.now()
        incident = Incident(
            reference=_next_reference(now),
            title=title[:200],
            summary=summary,
            severity=level,
            tags=sorted({t.strip() for t in tags if t and t.strip()}),
            customer_impact=customer_impact,
            restricted=restricted,
            commander=commander,
            created_by=actor,
            dedup_key=dedup_key,
            source_kind=source_kind,
            declared_at=now,
            last_activity_at=now,
        )
        incident.ack_due_at, incident.resolve_due_at = incident.compute_due(level)
        incident.save(force_insert=True)
        incident.services.set(found)
        text = f"Declared {level.name}: **{title}**"
        if commander is not None:
            text += f" — commander {commander}"
        timeline_add_event(
            incident=incident,
            kind=EventKind.DECLARED,
            text=text,
            actor=actor,
            author_label=author_label,
            data={"severity": level.level, "source": source_kind},
        )
        audit.record(actor, "incident.declare", incident, after=_snapshot(incident))
        _announce(
            "incident.declared",
            incident,
            f"{incident.reference} declared: {level.name} {incident.title}",
            summary or f"{level.name} ({level.definition}) declared by {actor or source_kind}.",
            on_call=True,
        )
        # In this transaction: an escalation that on-call starts commits with the incident.
        signals.incident_opened.send(sender=Incident, incident=incident)
    return incident


def incident_transition(
    *, incident: Incident, actor, to: str, note: str = "", confirm_firing: bool = False
) -> Incident:
    """Move along triggered → acknowledged → mitigated → resolved → closed.

    Refuses (TransitionRefused) a disallowed step, including one that a
    concurrent user already made; asks for confirmation (ConfirmationRequired)
    before resolving while alerts still fire.
    """
    check_can_manage(actor, incident)
    with transaction.atomic():
        # The row lock makes two people pressing "Acknowledge" at once
        # produce one transition; the second sees the new status and is refused.
        current = Incident.objects.select_for_update().select_related("severity").get(pk=incident.pk)
        allowed = TRANSITIONS.get(current.status, frozenset())
        if to not in allowed:
            names = ", ".join(sorted(Status(s).label for s in allowed)) or "none (reopen it first)"
            raise TransitionRefused(
                f"{current.reference} is {current.get_status_display().lower()}: it cannot become "
                f"“{Status(to).label if to in Status.values else to}”. Allowed next: {names}."
            )
        firing = []
        if to == Status.RESOLVED:
            firing = list(current.signals.filter(firing=True).order_by("label"))
            if firing and not confirm_firing:
                raise ConfirmationRequired(firing)
        before = _snapshot(current)
        previous = current.status
        now = timezone.now()
        current.status = to
        setattr(current, PHASE_FIELDS[to], now)
        current.save(update_fields=["status", PHASE_FIELDS[to], "updated_at"])
        text = f"Status: {Status(previous).label} → **{Status(to).label}**"
        if note:
            text += f"\n\n{note}"
        if firing:
            text += (
                f"\n\nResolved while {len(firing)} alert(s) were still firing "
                f"({', '.join(s.label or s.key for s in firing)}) — confirmed by {actor}."
            )
        timeline_add_event(
            incident=current,
            kind=EventKind.STATUS,
            text=text,
            actor=actor,
            data={"from": previous, "to": to, "confirmed_firing": [s.key for s in firing]},
        )
        audit.record(actor, "incident.transition", current, before=before, after=_snapshot(current))
        if to == Status.ACKNOWLEDGED:
            signals.incident_acknowledged.send(sender=Incident, incident=current, actor=actor)
        level = current.severity
        if to == Status.ACKNOWLEDGED and current.reopen_count == 0:
            seconds = (now - current.declared_at).total_seconds()
            transaction.on_commit(lambda: metrics.observe_ack(level.name, seconds))
        if to == Status.RESOLVED:
            seconds = (now - current.declared_at).total_seconds()
            transaction.on_commit(lambda: metrics.observe_resolve(level.name, seconds))
            _announce(
                "incident.resolved",
                current,
                f"{current.reference} resolved: {current.title}",
                f"{level.name} resolved after {_duration(seconds)} by {actor}.",
            )
    return current


def incident_reopen(*, incident: Incident, actor, reason: str) -> Incident:
    """Explicit reopen of a resolved or closed incident: back to acknowledged, with an event."""
    check_can_manage(actor, incident)
    if not (reason or "").strip():
        raise ValidationError("Say why the incident is reopened.")
    try:
        with transaction.atomic():
            current = Incident.objects.select_for_update().get(pk=incident.pk)
            if current.status not in (Status.RESOLVED, Status.CLOSED):
                raise TransitionRefused(f"{current.reference} is still open: there is nothing to reopen.")
            before = _snapshot(current)
            previous = current.status
            current.status = Status.ACKNOWLEDGED
            current.resolved_at = current.closed_at = None
            current.reopen_count = F("reopen_count") + 1
            current.save(update_fields=["status", "resolved_at", "closed_at", "reopen_count", "updated_at"])
            current.refresh_from_db()
            timeline_add_event(
                incident=current,
                kind=EventKind.STATUS,
                actor=actor,
                text=f"Reopened ({Status(previous).label} → **Acknowledged**): {reason}",
                data={"from": previous, "to": Status.ACKNOWLEDGED, "reopen": True},
            )
            audit.record(actor, "incident.reopen", current, before=before, after=_snapshot(current))
    except IntegrityError:
        # The partial unique constraint: an open incident already tracks this alert group.
        raise TransitionRefused("Another open incident already tracks the same alert group.") from None
    return current


@transaction.atomic
def incident_set_severity(*, incident: Incident, actor, severity: int, reason: str = "") -> Incident:
    """Change the SEV; the deadlines follow the new level's targets."""
    check_can_manage(actor, incident)
    level = severity_level(severity)
    current = Incident.objects.select_for_update().select_related("severity").get(pk=incident.pk)
    if current.severity_id == level.level:
        return current
    before = _snapshot(current)
    old = current.severity
    current.severity = level
    current.ack_due_at, current.resolve_due_at = current.compute_due(level)
    current.save(update_fields=["severity", "ack_due_at", "resolve_due_at", "updated_at"])
    text = f"SEV: {old.name} → **{level.name}**" + (f" — {reason}" if reason else "")
    timeline_add_event(
        incident=current,
        kind=EventKind.SEVERITY,
        text=text,
        actor=actor,
        data={"from": old.level, "to": level.level},
    )
    audit.record(actor, "incident.severity", current, before=before, after=_snapshot(current))
    _announce(
        "incident.severity_changed",
        current,
        f"{current.reference} is now {level.name}: {current.title}",
        f"SEV {old.name} → {level.name} by {actor}" + (f": {reason}" if reason else "."),
    )
    return current


@transaction.atomic
def incident_set_roles(*, incident: Incident, actor, commander=None, comms_lead=None, responders=()) -> Incident:
    """Assign commander, communications lead and responders; one event per change."""
    check_can_manage(actor, incident)
    current = Incident.objects.select_for_update().get(pk=incident.pk)
    before = {
        **_snapshot(current),
        "responders": sorted(current.responders.values_list("pk", flat=True)),
    }
    changes = []
    for field, label, user in (
        ("commander", "Commander", commander),
        ("comms_lead", "Comms lead", comms_lead),
    ):
        if getattr(current, f"{field}_id") != (user.pk if user else None):
            setattr(current, field, user)
            changes.append(f"{label}: **{user or 'nobody'}**")
    current.save(update_fields=["commander", "comms_lead", "updated_at"])
    old_ids = set(before["responders"])
    new = list(responders)
    if {u.pk for u in new} != old_ids:
        current.responders.set(new)
        changes.append("Responders: " + (", ".join(str(u) for u in new) or "nobody"))
    if changes:
        timeline_add_event(
            incident=current,
            kind=EventKind.ROLE,
            text="\n".join(f"- {c}" for c in changes),
            actor=actor,
            data={
                "commander": current.commander_id,
                "comms_lead": current.comms_lead_id,
                "responders": sorted(u.pk for u in new),
            },
        )
        after = {**_snapshot(current), "responders": sorted(u.pk for u in new)}
        audit.record(actor, "incident.roles", current, before=before, after=after)
    return current


@transaction.atomic
def incident_update_details(
    *,
    incident: Incident,
    actor,
    title: str,
    summary: str,
    customer_impact: str,
    services: Iterable = (),
    tags: Iterable[str] = (),
    restricted: bool = False,
) -> Incident:
    """Edit what is known about the incident; records which fields changed."""
    check_can_manage(actor, incident)
    current = Incident.objects.select_for_update().get(pk=incident.pk)
    before = {
        **_snapshot(current),
        "services": sorted(current.services.values_list("slug", flat=True)),
    }
    found, _ = _resolve_services(services)
    current.title = (title or current.title).strip()[:200]
    current.summary, current.customer_impact, current.restricted = (
        summary,
        customer_impact,
        restricted,
    )
    current.tags = sorted({t.strip() for t in tags if t and t.strip()})
    current.save(update_fields=["title", "summary", "customer_impact", "restricted", "tags", "updated_at"])
    current.services.set(found)
    after = {**_snapshot(current), "services": sorted(s.slug for s in found)}
    changed = [k for k in after if before.get(k) != after[k]]
    if changed:
        text = "Updated " + ", ".join(k.replace("_", " ") for k in changed)
        if "customer_impact" in changed and customer_impact:
            text += f"\n\n**Customer impact:** {customer_impact}"
        timeline_add_event(
            incident=current,
            kind=EventKind.UPDATE,
            text=text,
            actor=actor,
            data={"changed": changed},
        )
        audit.record(actor, "incident.update", current, before=before, after=after)
    return current


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60}h {minutes % 60}m" if minutes >= 60 else f"{minutes}m"


# --- alerts and checks -----------------------------------------------------------


def _update_signals(incident: Incident, signals: list[dict]) -> None:
    """Upsert the latest state of each alert/check in one statement."""
    now = timezone.now()
    latest = {str(sig["key"])[:300]: sig for sig in signals}  # one row per key, last state wins
    IncidentSignal.objects.bulk_create(
        [
            IncidentSignal(
                incident=incident,
                key=key,
                firing=bool(sig["firing"]),
                label=str(sig.get("label", ""))[:300],
                updated_at=now,
            )
            for key, sig in latest.items()
        ],
        update_conflicts=True,
        unique_fields=["incident", "key"],
        update_fields=["firing", "label", "updated_at"],
    )


def open_or_update_from_source(
    *,
    dedup_key: str,
    title: str,
    severity: int,
    services: Iterable = (),
    text: str,
    resolved: bool = False,
    data: dict | None = None,
    source_kind: str = "alert",
) -> Incident | None:
    """Alerts and checks open incidents by themselves.

    - the first firing call for a dedup key opens an incident (SEV `severity`);
    - later calls while that incident is open add an event to it;
    - `resolved=True` adds a "resolved" event to the open incident (or to the
      latest one for that key); it does not resolve the incident — people do;
    - returns None when there is nothing to attach a resolved signal to.
    `data["signals"]` (optional) lists {key, label, firing} per alert so that
    resolving asks for confirmation while any still fires.
    Idempotent for repeats: a call whose text and data equal the incident's latest
    event from that source adds nothing (a retried task); a flap
    (firing → resolved → firing) still records every change.
    Safe under concurrency: the partial unique constraint allows one open
    incident per dedup key; a loser of that race adds its event to the winner.
    """
    if not dedup_key:
        raise ValueError("dedup_key is required")
    data = dict(data or {})
    signals = data.pop("signals", None) or [{"key": dedup_key, "label": title, "firing": not resolved}]
    kind = EventKind.CHECK if source_kind == "check" else EventKind.ALERT
    label = f"{source_kind}"
    with transaction.atomic():
        incident = Incident.objects.select_for_update().open().filter(dedup_key=dedup_key).first()
        if incident is None and resolved:
            incident = Incident.objects.filter(dedup_key=dedup_key).order_by("-declared_at").first()
            if incident is None:
                return None
        elif incident is None:
            try:
                with transaction.atomic():
                    incident = incident_declare(
                        actor=None,
                        title=title,
                        severity=severity,
                        services=services,
                        dedup_key=dedup_key,
                        source_kind=source_kind,
                        author_label=label,
                    )
                    _add_on_call_responders(incident)
            except IntegrityError:
                incident = Incident.objects.select_for_update().open().get(dedup_key=dedup_key)
        prefix = "Resolved" if resolved else "Firing"
        event_text = f"**{prefix}:** {text}" if text else f"**{prefix}:** {title}"
        if not resolved and int(severity) < incident.severity_id:
            event_text += (
                f"\n\nThe source reports SEV-{int(severity)}, higher than the incident's SEV-{incident.severity_id}."
            )
        event_data = audit._normalise({**data, "dedup_key": dedup_key, "resolved": resolved, "severity": int(severity)})
        last = TimelineEvent.objects.filter(incident=incident, kind=kind).order_by("-id").first()
        if last is not None and last.data == event_data and last.text == event_text:
            # The same signal delivered again (a retried task, a re-sent
            # notification): the timeline already says so.
            return incident
        timeline_add_event(incident=incident, kind=kind, text=event_text, author_label=label, data=event_data)
        _update_signals(incident, signals)
        audit.record(
            None,
            f"incident.{source_kind}_{'resolved' if resolved else 'firing'}",
            incident,
            after={"dedup_key": dedup_key},
        )
    return incident


def _add_on_call_responders(incident: Incident) -> None:
    """Whoever is on call for the incident's first service becomes a responder,
    so that an SRE paged by an alert may acknowledge the incident it opened."""
    from oncall.selectors import on_call_now

    users = on_call_now(service=incident.services.first())
    if users:
        incident.responders.add(*users)


def alert_severity(label_value: str | None) -> int:
    """The SEV for an Alertmanager severity label, via the Manager-edited mapping."""
    ensure_defaults()
    if label_value:
        mapping = AlertSeverityMapping.objects.filter(label_value__iexact=label_value.strip()).first()
        if mapping:
            return mapping.severity_id
    return settings.ALERT_DEFAULT_SEVERITY


# --- SEV table and alert mappings (Managers) -----------------------------------


@transaction.atomic
def severity_level_update(
    *,
    actor,
    level: SeverityLevel,
    definition: str,
    examples: str,
    ack_target_minutes: int,
    resolve_target_minutes: int,
) -> SeverityLevel:
    """Edit one SEV row; open incidents of that level get the new deadlines."""
    check_capability(actor, "schedule.edit")
    if resolve_target_minutes < ack_target_minutes:
        raise ValidationError("The resolve target cannot be shorter than the acknowledge target.")
    fields = ("definition", "examples", "ack_target_minutes", "resolve_target_minutes")
    before = audit.snapshot(level, fields)
    level.definition, level.examples = definition, examples
    level.ack_target_minutes, level.resolve_target_minutes = (
        ack_target_minutes,
        resolve_target_minutes,
    )
    level.save(update_fields=list(fields))
    after = audit.snapshot(level, fields)
    if before != after:
        Incident.objects.open().filter(severity=level).update(
            ack_due_at=F("declared_at") + timedelta(minutes=ack_target_minutes),
            resolve_due_at=F("declared_at") + timedelta(minutes=resolve_target_minutes),
        )
        audit.record(actor, "incident.severity_level_update", level, before=before, after=after)
    return level


@transaction.atomic
def alert_mapping_set(*, actor, label_value: str, severity: int) -> AlertSeverityMapping:
    check_capability(actor, "schedule.edit")
    value = (label_value or "").strip().lower()
    if not value:
        raise ValidationError("Give the severity label value, e.g. “critical”.")
    level = severity_level(severity)
    mapping = AlertSeverityMapping.objects.select_for_update().filter(label_value=value).first()
    before = {"severity": mapping.severity_id} if mapping else None
    if mapping is None:
        mapping = AlertSeverityMapping.objects.create(label_value=value, severity=level)
    elif mapping.severity_id != level.level:
        mapping.severity = level
        mapping.save(update_fields=["severity"])
    audit.record(actor, "incident.alert_mapping_set", mapping, before=before, after={"severity": level.level})
    return mapping


@transaction.atomic
def alert_mapping_delete(*, actor, mapping: AlertSeverityMapping) -> None:
    check_capability(actor, "schedule.edit")
    audit.record(
        actor,
        "incident.alert_mapping_delete",
        mapping,
        before={"label_value": mapping.label_value, "severity": mapping.severity_id},
    )
    mapping.delete()


def open_statuses() -> tuple[str, ...]:
    return tuple(OPEN_STATUSES)


# --- nudges (Celery beat) ------------------------------------------------------------


def send_nudges(*, now: datetime | None = None) -> dict[str, int]:
    """Remind people about incidents that need them.

    - an acknowledged incident with no timeline activity for
      INCIDENT_NUDGE_MINUTES reminds its commander, once per quiet period
      (new activity starts a new period);
    - an open incident without a commander for that long reminds whoever is
      on call, then again every INCIDENT_NUDGE_MINUTES until someone commands it.
    Idempotent: each reminder is claimed with a conditional UPDATE, so two
    beat ticks or two workers running this at once send it once.
    """
    now = now or timezone.now()
    quiet_before = now - timedelta(minutes=settings.INCIDENT_NUDGE_MINUTES)
    not_nudged = Q(nudged_activity_at__isnull=True) | ~Q(nudged_activity_at=F("last_activity_at"))
    sent = {"commander": 0, "on_call": 0}
    quiet = (
        Incident.objects.filter(status=Status.ACKNOWLEDGED, commander__isnull=False, last_activity_at__lt=quiet_before)
        .filter(not_nudged)
        .select_related("commander", "severity")[:200]
    )
    for incident in quiet:
        with transaction.atomic():
            claimed = Incident.objects.filter(
                not_nudged, pk=incident.pk, last_activity_at=incident.last_activity_at
            ).update(nudged_activity_at=F("last_activity_at"))
            if not claimed:
                continue
            minutes = int((now - incident.last_activity_at).total_seconds() // 60)
            commander = incident.commander
            notifications.notify(
                event="incident.nudge",
                title=f"{incident.reference} has been quiet for {minutes} min",
                text=f"{incident.severity.name} {incident.title}: "
                f"no timeline activity for {minutes} minutes. "
                "Post an update, or mark it mitigated or resolved.",
                url=reverse("incidents:detail", args=[incident.reference]),
                service=incident.services.first(),
                emails=[commander.email] if commander.email else [],
                webhook=False,
            )
            timeline_add_event(
                incident=incident,
                kind=EventKind.NUDGE,
                author_label="console",
                text=f"Reminded {commander}: no activity for {minutes} min.",
                data={"to": commander.get_username(), "reason": "quiet"},
            )
            audit.record(
                None,
                "incident.nudge_commander",
                incident,
                after={"commander": commander.get_username()},
            )
            sent["commander"] += 1
    reminded_lately = Q(unassigned_nudged_at__gte=quiet_before)
    unassigned = (
        Incident.objects.open()
        .filter(commander__isnull=True, declared_at__lt=quiet_before)
        .exclude(reminded_lately)
        .select_related("severity")[:200]
    )
    for incident in unassigned:
        with transaction.atomic():
            claimed = (
                Incident.objects.filter(pk=incident.pk, commander__isnull=True)
                .exclude(reminded_lately)
                .update(unassigned_nudged_at=now)
            )
            if not claimed:
                continue
            notifications.notify_on_call(
                event="incident.nudge",
                title=f"{incident.reference} has no incident commander",
                text=f"{incident.severity.name} {incident.title} is "
                f"{incident.get_status_display().lower()} "
                "and nobody commands it. Take command or assign someone.",
                url=reverse("incidents:detail", args=[incident.reference]),
                service=incident.services.first(),
            )
            timeline_add_event(
                incident=incident,
                kind=EventKind.NUDGE,
                author_label="console",
                text="Reminded the on-call engineer: no incident commander yet.",
                data={"reason": "no_commander"},
            )
            audit.record(None, "incident.nudge_on_call", incident)
            sent["on_call"] += 1
    return sent
