"""On-call handoffs: the outgoing engineer's report (the seeds' "On-Call
Handoff" template), prefilled by the console, acknowledged by the incoming one.

Prefill reads the apps below this one: failing checks and maintenance
windows (healthchecks), open incidents (incidents; restricted ones never
appear — a handoff is readable by everyone), checklist runs and schedules
(checklists), runbook executions and remediation actions of the shift (runbooks).
Open items of the rotation's previous handoff are carried over until someone
closes them.

Concurrency: acknowledging or asking is a conditional UPDATE on the
handoff's status, so two people answering at once cannot both win, and an
acknowledged handoff is never reopened.
"""

import datetime
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from checklists.models import ChecklistRun, Schedule
from healthchecks.models import Check, MaintenanceWindow
from incidents.models import Incident
from notifications import services as notifications
from opsconsole import audit
from opsconsole.models import User
from opsconsole.roles import check_capability, has_capability
from runbooks.models import ActionRun, Execution

from .models import HANDOFF_MESSAGE_MAX_LENGTH, Handoff, HandoffItem, HandoffMessage, Rotation, Shift

CONFIRMATIONS = [
    ("briefed", "Outgoing engineer briefed incoming"),
    ("access", "Access verified (VPN, kubectl, AWS)"),
    ("channels", "Communication channels verified"),
]
STATUS_LINES = [
    ("all_healthy", "All services healthy"),
    ("no_incidents", "No active incidents"),
    ("queue_normal", "Queue processing normal"),
    ("no_deployments", "No pending deployments"),
]
SCHEDULE_HOURS = 24


@dataclass
class ItemDraft:
    key: str  # "c<item pk>" carried over, "i<incident pk>" an open incident
    title: str
    severity: str = ""
    status: str = ""
    notes: str = ""
    incident_id: int | None = None
    carried_from_id: int | None = None


@dataclass
class Draft:
    rotation: Rotation
    outgoing: User
    incoming: User | None
    period_start: datetime.datetime
    period_end: datetime.datetime
    system_status: dict
    items: list[ItemDraft] = field(default_factory=list)
    scheduled: list[dict] = field(default_factory=list)
    activity: list[dict] = field(default_factory=list)


def _failing_checks() -> list[dict]:
    checks = (
        Check.objects.filter(enabled=True, state__in=[Check.State.WARNING, Check.State.CRITICAL])
        .select_related("service")
        .order_by("state", "name")[:50]
    )
    return [{"name": c.name, "service": c.service.name, "state": c.state, "kind": c.kind} for c in checks]


def _open_incidents() -> list[Incident]:
    return list(
        Incident.objects.open()
        .filter(restricted=False)
        .select_related("severity")
        .order_by("severity_id", "declared_at")[:50]
    )


def _incoming(rotation: Rotation, outgoing: User, now: datetime.datetime) -> User | None:
    shift = (
        Shift.objects.filter(rotation=rotation, starts_at__gt=now - datetime.timedelta(hours=1))
        .exclude(user=outgoing)
        .select_related("user")
        .order_by("starts_at")
        .first()
    )
    return shift.user if shift else None


def _scheduled(now: datetime.datetime) -> list[dict]:
    until = now + datetime.timedelta(hours=SCHEDULE_HOURS)
    rows = [
        (
            w.starts_at,
            f"Maintenance: {w.reason}",
            f"{w.service or w.check_ref} (until {timezone.localtime(w.ends_at):%a %H:%M})",
        )
        for w in MaintenanceWindow.objects.filter(ends_at__gt=now, starts_at__lt=until)
        .select_related("service", "check_ref")
        .order_by("starts_at")[:20]
    ]
    rows += [
        (run.due_at, f"Checklist: {run.title}", "open run, due")
        for run in ChecklistRun.objects.filter(status=ChecklistRun.Status.OPEN).order_by("due_at")[:20]
    ]
    for schedule in Schedule.objects.filter(enabled=True).select_related("template")[:50]:
        slot = _next_slot(schedule, now)
        if slot is not None and slot < until:
            rows.append((slot, f"Checklist: {schedule.template.name}", "scheduled"))
    # Sorted as times (the slots carry their schedules' own offsets), stored
    # as UTC text: the snapshot is JSON, and pages show it in the reader's timezone.
    return [
        {"task": task, "time": moment.astimezone(datetime.UTC).isoformat(), "impact": impact}
        for moment, task, impact in sorted(rows, key=lambda row: row[0])
    ]


def _next_slot(schedule: Schedule, now: datetime.datetime) -> datetime.datetime | None:
    import zoneinfo

    tz = zoneinfo.ZoneInfo(schedule.timezone)
    local = now.astimezone(tz)
    for offset in range(0, 8):
        day = local.date() + datetime.timedelta(days=offset)
        if str(day.weekday()) not in schedule.days_of_week:
            continue
        slot = datetime.datetime.combine(day, schedule.time_of_day, tzinfo=tz)
        if slot > now:
            return slot
    return None


def _activity(start: datetime.datetime, end: datetime.datetime) -> list[dict]:
    """Runbook executions and remediation actions of the shift (none about a restricted incident)."""
    visible = Q(incident__isnull=True) | Q(incident__restricted=False)
    executions = (
        Execution.objects.filter(visible, started_at__gte=start, started_at__lte=end)
        .select_related("runbook", "started_by")
        .order_by("started_at")[:30]
    )
    rows = [
        {
            "what": f"Runbook: {e.runbook}",
            "status": e.get_status_display(),
            "by": str(e.started_by or ""),
            "at": e.started_at.isoformat(),
        }
        for e in executions
    ]
    actions = (
        ActionRun.objects.filter(visible, requested_at__gte=start, requested_at__lte=end)
        .select_related("requested_by")
        .order_by("requested_at")[:30]
    )
    rows += [
        {
            "what": f"Remediation: {a.action}",
            "status": a.get_status_display(),
            "by": str(a.requested_by or ""),
            "at": a.requested_at.isoformat(),
        }
        for a in actions
    ]
    return sorted(rows, key=lambda row: row["at"])


def prefill(*, rotation: Rotation, outgoing: User, now: datetime.datetime | None = None) -> Draft:
    """What the console already knows for a new handoff of `rotation` by `outgoing`."""
    now = now or timezone.now()
    last = Handoff.objects.filter(rotation=rotation).order_by("-submitted_at").first()
    current = (
        Shift.objects.filter(
            rotation=rotation, user=outgoing, starts_at__lte=now, ends_at__gt=now - datetime.timedelta(hours=1)
        )
        .order_by("-starts_at")
        .first()
    )
    start = (last.submitted_at if last else None) or (
        current.starts_at if current else now - datetime.timedelta(hours=12)
    )
    checks = _failing_checks()
    incidents = _open_incidents()
    items: list[ItemDraft] = []
    carried_incidents = set()
    if last is not None:
        for item in last.items.filter(closed=False).select_related("incident", "incident__severity"):
            live = item.incident
            if live is not None and live.restricted:
                continue
            if live is not None:
                carried_incidents.add(live.pk)
            items.append(
                ItemDraft(
                    key=f"c{item.pk}",
                    title=item.title,
                    severity=live.severity.name if live else item.severity,
                    status=live.get_status_display() if live else item.status,
                    notes=item.notes,
                    incident_id=item.incident_id,
                    carried_from_id=item.pk,
                )
            )
    for incident in incidents:
        if incident.pk not in carried_incidents:
            items.append(
                ItemDraft(
                    key=f"i{incident.pk}",
                    title=f"{incident.reference} {incident.title}",
                    severity=incident.severity.name,
                    status=incident.get_status_display(),
                    incident_id=incident.pk,
                )
            )
    status = {
        "checks": checks,
        "all_healthy": not checks,
        "no_incidents": not incidents,
        "queue_normal": not any(c["kind"] == "queue" for c in checks),
        "no_deployments": True,
    }
    return Draft(
        rotation=rotation,
        outgoing=outgoing,
        incoming=_incoming(rotation, outgoing, now),
        period_start=min(start, now),
        period_end=now,
        system_status=status,
        items=items,
        scheduled=_scheduled(now),
        activity=_activity(min(start, now), now),
    )


@transaction.atomic
def handoff_submit(
    *,
    actor: User,
    rotation: Rotation,
    incoming: User | None,
    notes: dict[str, str],
    closed: set[str],
    new_items: list[str],
    recent_changes: str,
    known_issues: str,
    no_deployments: bool = True,
    now: datetime.datetime | None = None,
) -> Handoff:
    """Write the handoff from a fresh prefill plus what the outgoing engineer
    edited (notes and closed items by key, new free-text items)."""
    check_capability(actor, "handoff.write")
    now = now or timezone.now()
    if incoming is not None and incoming.pk == actor.pk:
        raise ValidationError({"incoming": "Hand off to someone else."})
    draft = prefill(rotation=rotation, outgoing=actor, now=now)
    draft.system_status["no_deployments"] = bool(no_deployments)
    handoff = Handoff.objects.create(
        rotation=rotation,
        outgoing=actor,
        incoming=incoming or draft.incoming,
        period_start=draft.period_start,
        period_end=draft.period_end,
        system_status=audit._normalise(draft.system_status),
        scheduled=draft.scheduled,
        activity=draft.activity,
        recent_changes=(recent_changes or "").strip(),
        known_issues=(known_issues or "").strip(),
        submitted_at=now,
    )
    rows = [
        HandoffItem(
            handoff=handoff,
            position=i,
            incident_id=item.incident_id,
            title=item.title[:200],
            severity=item.severity[:20],
            status=item.status[:30],
            notes=(notes.get(item.key, item.notes) or "").strip(),
            closed=item.key in closed,
            carried_from_id=item.carried_from_id,
        )
        for i, item in enumerate(draft.items)
    ]
    rows += [
        HandoffItem(handoff=handoff, position=len(rows) + i, title=text.strip()[:200])
        for i, text in enumerate(new_items)
        if text.strip()
    ]
    HandoffItem.objects.bulk_create(rows)
    audit.record(
        actor,
        "oncall.handoff_submit",
        handoff,
        after={"rotation": rotation.name, "incoming": str(handoff.incoming or ""), "items": len(rows)},
    )
    return handoff


def _may_answer(actor: User, handoff: Handoff) -> None:
    if actor.pk == handoff.outgoing_id:
        raise PermissionDenied("The outgoing engineer cannot confirm their own handoff.")
    if handoff.incoming_id not in (None, actor.pk) and not has_capability(actor, "schedule.edit"):
        raise PermissionDenied("Only the incoming engineer (or a Manager) can answer this handoff.")


@transaction.atomic
def handoff_acknowledge(*, actor: User, handoff: Handoff, confirmations: list[str]) -> Handoff:
    """ "Handoff confirmed". Refused once acknowledged (by anyone): a conditional UPDATE."""
    check_capability(actor, "handoff.write")
    _may_answer(actor, handoff)
    valid = [key for key, _label in CONFIRMATIONS if key in set(confirmations)]
    now = timezone.now()
    updated = (
        Handoff.objects.filter(pk=handoff.pk)
        .exclude(status=Handoff.Status.ACKNOWLEDGED)
        .update(status=Handoff.Status.ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=actor, confirmations=valid)
    )
    if not updated:
        raise ValidationError("This handoff was already confirmed.")
    audit.record(actor, "oncall.handoff_acknowledge", handoff, after={"confirmations": valid})
    handoff.refresh_from_db()
    return handoff


@transaction.atomic
def handoff_ask(*, actor: User, handoff: Handoff, question: str) -> Handoff:
    """The incoming engineer asks before confirming (timestamped; the handoff stays unconfirmed)."""
    check_capability(actor, "handoff.write")
    _may_answer(actor, handoff)
    question = (question or "").strip()
    if not question:
        raise ValidationError({"question": "Write the question."})
    if len(question) > HANDOFF_MESSAGE_MAX_LENGTH:
        raise ValidationError({"question": f"Keep the question to {HANDOFF_MESSAGE_MAX_LENGTH:,} characters."})
    now = timezone.now()
    updated = (
        Handoff.objects.filter(pk=handoff.pk)
        .exclude(status=Handoff.Status.ACKNOWLEDGED)
        .update(status=Handoff.Status.QUESTIONED, question=question, questioned_at=now, questioned_by=actor)
    )
    if not updated:
        raise ValidationError("This handoff was already confirmed.")
    message = HandoffMessage.objects.create(
        handoff=handoff, kind=HandoffMessage.Kind.QUESTION, author=actor, text=question, created_at=now
    )
    audit.record(actor, "oncall.handoff_question", handoff, after={"question": question[:200], "message": message.pk})
    _tell(handoff.outgoing, handoff, f"{actor} asked about your handoff of {handoff.rotation.name}", question)
    handoff.refresh_from_db()
    return handoff


def may_reply(actor: User, handoff: Handoff) -> bool:
    """Who answers a question: the outgoing engineer who wrote the handoff, or a
    Manager/Admin for them (the outgoing one has gone off shift); never the
    person who asked. Only while a question is open."""
    return handoff.status == Handoff.Status.QUESTIONED and _answerer(actor, handoff)


def _answerer(actor: User, handoff: Handoff) -> bool:
    return (
        has_capability(actor, "handoff.write")
        and (actor.pk == handoff.outgoing_id or has_capability(actor, "schedule.edit"))
        and actor.pk != handoff.questioned_by_id
    )


@transaction.atomic
def handoff_reply(*, actor: User, handoff: Handoff, answer: str) -> HandoffMessage:
    """The outgoing engineer answers the open question, in the app: timestamped,
    audited, the asker notified. A conditional UPDATE (questioned → answered)
    lets one answer through when two arrive at once; the handoff still waits
    for the incoming engineer's confirmation (or a follow-up question)."""
    check_capability(actor, "handoff.write")
    if not _answerer(actor, handoff):
        raise PermissionDenied("Only the outgoing engineer (or a Manager) can answer this question.")
    answer = (answer or "").strip()
    if not answer:
        raise ValidationError({"answer": "Write the answer."})
    if len(answer) > HANDOFF_MESSAGE_MAX_LENGTH:
        raise ValidationError({"answer": f"Keep the answer to {HANDOFF_MESSAGE_MAX_LENGTH:,} characters."})
    updated = Handoff.objects.filter(pk=handoff.pk, status=Handoff.Status.QUESTIONED).update(
        status=Handoff.Status.ANSWERED
    )
    if not updated:
        raise ValidationError("There is no open question on this handoff (answered or confirmed already).")
    message = HandoffMessage.objects.create(
        handoff=handoff, kind=HandoffMessage.Kind.ANSWER, author=actor, text=answer, created_at=timezone.now()
    )
    audit.record(actor, "oncall.handoff_answer", handoff, after={"answer": answer[:200], "message": message.pk})
    if handoff.questioned_by is not None:
        _tell(handoff.questioned_by, handoff, f"{actor} answered your question on {handoff.rotation.name}", answer)
    return message


def _tell(user: User | None, handoff: Handoff, title: str, text: str) -> None:
    """E-mail one person about the thread (a handoff is readable by everyone, so
    no restricted content; no shared webhook: it is a conversation of two)."""
    if user is None or not user.email:
        return
    notifications.notify(
        event="oncall.handoff_thread",
        title=title,
        text=text,
        url=reverse("oncall:handoff_detail", args=[handoff.pk]),
        emails=[user.email],
        webhook=False,
        subject=handoff,
    )


def overdue_before(now: datetime.datetime | None = None) -> datetime.datetime:
    return (now or timezone.now()) - datetime.timedelta(minutes=settings.ONCALL_HANDOFF_ACK_MINUTES)
