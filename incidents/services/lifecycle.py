"""Declaring an incident and moving it through its states."""

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from notifications.recipients import on_call_now
from opsconsole import audit
from opsconsole.roles import check_capability

from .. import metrics, signals
from ..models import OPEN_STATUSES, EventKind, Incident, IncidentSignal, SeverityLevel, Status
from .announce import _announce
from .common import _duration, _next_reference, _resolve_services, _snapshot
from .permissions import check_can_manage
from .severity import severity_level
from .timeline import timeline_add_event

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


class TransitionRefused(Exception):
    """A status change the state machine (or a concurrent change) does not allow."""


class ConfirmationRequired(Exception):
    """Resolving while alerts still fire: the caller must confirm."""

    def __init__(self, firing: list[IncidentSignal]):
        self.firing = firing
        super().__init__(f"{len(firing)} alert(s) still firing")


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
    on_call_responders: bool = False,
    reference: str = "",
) -> Incident:
    """Open an incident with a fresh INC-YYYY-MM-DD-NNN id, its deadlines and a
    "declared" event. `actor` None means the system (alerts, checks).
    `on_call_responders`: whoever is on call for the first service becomes a
    responder (incidents opened by alerts and checks, so that the SRE they
    page may acknowledge them). `reference`: one taken beforehand with
    next_reference() (the Alertmanager webhook does, outside its transaction)."""
    if actor is not None:
        check_capability(actor, "incident.declare")
    title = (title or "").strip()
    if not title:
        raise ValidationError("An incident needs a title.")
    level = severity_level(severity)
    found, _missing = _resolve_services(services)
    # No savepoint of its own: a failure fails the caller's transaction (or
    # its savepoint: open_or_update_from_source keeps one for the race on the
    # dedup key), two round trips fewer per declare.
    with transaction.atomic(savepoint=False):
        now = timezone.now()
        incident = Incident(
            reference=reference or _next_reference(now),
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
        if found:
            # A new incident has no links yet: insert them (one statement;
            # add() would first read the existing ones). The audit entry
            # below refreshes live pages, as add()'s m2m_changed would.
            through = Incident.services.through
            through.objects.bulk_create(
                [through(incident=incident, service=service) for service in {s.pk: s for s in found}.values()]
            )
        _remember_services(incident, found)
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
            activity=False,  # last_activity_at is the declare's own time
        )
        audit.record(actor, "incident.declare", incident, after=_snapshot(incident))
        if dedup_key:
            from ..reviews.recurrence import detect_recurrence

            detect_recurrence(incident)
        # In this transaction: an escalation that on-call starts commits with the incident.
        # Receivers answer who they paged; the announcement leaves those people
        # out (one notice each, the specific one) and tells the channel instead.
        paged, notes = _paged_by_receivers(signals.incident_opened.send(sender=Incident, incident=incident))
        text = summary or f"{level.name} ({level.definition}) declared by {actor or source_kind}."
        # Asked once, for the responders and the announcement (a restricted
        # incident is not announced to whoever is merely on call).
        on_call = on_call_now(service=incident.services.first()) if on_call_responders or not restricted else []
        if on_call_responders and on_call:
            incident.responders.add(*on_call)
        _announce(
            "incident.declared",
            incident,
            f"{incident.reference} declared: {level.name} {incident.title}",
            " ".join([text, *notes]),
            on_call=True,
            on_call_people=on_call,
            exclude=paged,
        )
    return incident


def _remember_services(incident: Incident, services: list) -> None:
    """Keep a new incident's services as if prefetched: the escalation policy,
    the on-call lookup and the announcement each read them, one query apiece
    otherwise. Sorted and de-duplicated as the database would return them
    (Service's Meta ordering), so `incident.services.first()` is the same
    service; any later add/set/remove drops this cache (Django does)."""
    rows = sorted({s.pk: s for s in services}.values(), key=lambda s: (s.tier, s.name))
    queryset = incident.services.get_queryset()
    queryset._result_cache = rows
    queryset._prefetch_done = True
    incident._prefetched_objects_cache = {incident.services.prefetch_cache_name: queryset}


def _paged_by_receivers(responses) -> tuple[set[str], list[str]]:
    """incident_opened receivers may answer {"paged_emails": [...], "note": "..."}."""
    paged: set[str] = set()
    notes: list[str] = []
    for _receiver, answer in responses:
        if isinstance(answer, dict):
            paged |= set(answer.get("paged_emails") or ())
            if answer.get("note"):
                notes.append(answer["note"])
    return paged, notes


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
        if to == Status.CLOSED:
            from ..reviews.services import close_refusal  # reviews build on this package

            refusal = close_refusal(current)
            if refusal:
                raise TransitionRefused(refusal)
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
        fields = ["status", PHASE_FIELDS[to], "updated_at"]
        # Whoever acknowledges an incident nobody commands takes command:
        # an acknowledged incident always has someone in charge.
        takes_command = to == Status.ACKNOWLEDGED and current.commander_id is None and actor is not None
        if takes_command:
            current.commander = actor
            fields.append("commander")
        current.save(update_fields=fields)
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
        if takes_command:
            timeline_add_event(
                incident=current,
                kind=EventKind.ROLE,
                text=f"- Commander: **{actor}** (acknowledged an incident that had no commander)",
                actor=actor,
                data={"commander": actor.pk, "reason": "acknowledged_without_commander"},
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
            from ..reviews.services import on_incident_resolved

            on_incident_resolved(current)
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


def open_statuses() -> tuple[str, ...]:
    return tuple(OPEN_STATUSES)
