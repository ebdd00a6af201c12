"""Escalation: an unacknowledged incident pages the next level by itself.

The clock. Starting an escalation (an incident opened — incidents' hook)
pages level 1 at once; level n+1 is due `wait_minutes` of level n after
level n was *due* (not after it was sent), so the ladder keeps the times it
promised even when a page went out late.

Exactly once, whatever crashes. A level is paged inside one transaction
that (1) locks the IncidentEscalation row with SELECT … FOR UPDATE SKIP
LOCKED and re-checks that this level is still the next one and due,
(2) inserts the EscalationStep (unique per escalation and level), (3) moves
the clock on, (4) writes the timeline event, the notifications' deliveries
and the audit entry. A worker killed anywhere in there rolls it all back, so
the next sweep pages that level again, once; a sweep that runs twice, or two
workers at once, find the row locked or the level already advanced. The
deliveries themselves are sent after commit by the notifications app
(claimed with a lease: sent once, retried, dead letters listed).

Late. Beat down for an hour: the next sweep pages every level that fell due
meanwhile, in order, each once, marked late (sent more than
ONCALL_ESCALATION_LATE_SECONDS after it was due) on the step and the timeline.
"""

import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from prometheus_client import Counter

from incidents.models import EventKind, Incident, Status
from incidents.services import timeline_add_event
from notifications import services as notifications
from opsconsole import audit
from opsconsole.models import User

from .models import EscalationLevel, EscalationPolicy, EscalationStep, IncidentEscalation, Shift

ESCALATIONS = Counter(
    "opsconsole_oncall_escalations",
    "Escalation levels paged for unacknowledged incidents, by timeliness (on_time, late).",
    ["timeliness"],
)
SWEEP_BATCH = 500


def policy_for(incident: Incident) -> EscalationPolicy | None:
    """The policy of the incident's first service that has one, else the default policy."""
    service_ids = [s.pk for s in incident.services.all()]
    found = (
        EscalationPolicy.objects.filter(policy_services__service_id__in=service_ids)
        .order_by("policy_services__service__name")
        .first()
        if service_ids
        else None
    )
    return found or EscalationPolicy.objects.filter(is_default=True).first()


def escalation_start(*, incident: Incident, now: datetime.datetime | None = None) -> IncidentEscalation | None:
    """Start the incident's escalation and page level 1 now, in the caller's
    transaction (the incident's declare). Idempotent: an incident has one
    escalation; a second call returns it and pages nobody."""
    now = now or timezone.now()
    if incident.status != Status.TRIGGERED:
        return None
    policy = policy_for(incident)
    if policy is None or not policy.levels.exists():
        return None
    with transaction.atomic():
        escalation, created = IncidentEscalation.objects.get_or_create(
            incident=incident, defaults={"policy": policy, "started_at": now, "next_due_at": now}
        )
        if created:
            audit.record(None, "oncall.escalation_start", incident, after={"policy": policy.name})
            advance(escalation.pk, now=now)
    return escalation


def escalation_stop(*, incident: Incident, actor=None, reason: str = IncidentEscalation.Stop.ACKNOWLEDGED) -> bool:
    """Stop the clock (acknowledged). Idempotent; a conditional UPDATE, so a sweep
    that locked the row first pages its level and the stop waits, then wins."""
    now = timezone.now()
    with transaction.atomic():
        escalation = (
            IncidentEscalation.objects.select_for_update().filter(incident=incident, stopped_at__isnull=True).first()
        )
        if escalation is None:
            return False
        IncidentEscalation.objects.filter(pk=escalation.pk).update(
            stopped_at=now, stopped_reason=reason, next_due_at=None
        )
        who = f" by {actor}" if actor is not None else ""
        timeline_add_event(
            incident=incident,
            kind=EventKind.ESCALATION,
            text=f"Escalation stopped: {IncidentEscalation.Stop(reason).label.lower()}{who} "
            f"after level {escalation.current_position}.",
            author_label="escalation",
            data={"stopped": reason, "level": escalation.current_position},
        )
        audit.record(actor, "oncall.escalation_stop", incident, after={"reason": reason})
    return True


def escalate_due(now: datetime.datetime | None = None) -> dict[str, int]:
    """Beat: page every level that is due. Returns {"paged": n, "late": m}."""
    now = now or timezone.now()
    result = {"paged": 0, "late": 0}
    due_ids = list(
        IncidentEscalation.objects.filter(stopped_at__isnull=True, next_due_at__lte=now)
        .order_by("next_due_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    if not due_ids:
        return result
    cache = _Cache()
    for escalation_id in due_ids:
        while True:  # every level that fell due, in order (beat was down)
            outcome = advance(escalation_id, now=now, cache=cache)
            if outcome is None:
                break
            result["paged"] += 1
            result["late"] += outcome.late
    return result


class _Cache:
    """Per-sweep memo of levels and on-call people, so 1,000 due incidents of
    a few policies cost a few queries for those, not thousands."""

    def __init__(self) -> None:
        self.levels: dict[int, dict[int, EscalationLevel]] = {}
        self.on_call: dict[int, list[User]] = {}

    def level(self, policy_id: int, position: int) -> EscalationLevel | None:
        if policy_id not in self.levels:
            levels = EscalationLevel.objects.filter(policy_id=policy_id).select_related("rotation")
            self.levels[policy_id] = {lv.position: lv for lv in levels.prefetch_related("users")}
        return self.levels[policy_id].get(position)

    def rotation_people(self, rotation_id: int, now: datetime.datetime) -> list[User]:
        if rotation_id not in self.on_call:
            shifts = Shift.objects.filter(
                rotation_id=rotation_id, starts_at__lte=now, ends_at__gt=now, user__is_active=True
            ).select_related("user")
            self.on_call[rotation_id] = [s.user for s in shifts]
        return self.on_call[rotation_id]


def _recipients(level: EscalationLevel, cache: _Cache, now: datetime.datetime) -> list[User]:
    people = list(cache.rotation_people(level.rotation_id, now)) if level.rotation_id else []
    people += [u for u in level.users.all() if u.is_active]
    unique = {u.pk: u for u in people}
    return sorted(unique.values(), key=lambda u: u.get_username())


def advance(escalation_id: int, *, now: datetime.datetime | None = None, cache: _Cache | None = None):
    """Page the escalation's next level if it is due. Returns the step, or None
    when nothing was due (or another worker holds it). See the module docstring."""
    now = now or timezone.now()
    cache = cache or _Cache()
    with transaction.atomic():
        escalation = (
            IncidentEscalation.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk=escalation_id, stopped_at__isnull=True, next_due_at__lte=now)
            .select_related("incident")
            .first()
        )
        if escalation is None:
            return None
        incident = escalation.incident
        if incident.status != Status.TRIGGERED:
            # Acknowledged by a path that missed the hook: stop quietly.
            IncidentEscalation.objects.filter(pk=escalation.pk).update(
                stopped_at=now, stopped_reason=IncidentEscalation.Stop.CLOSED, next_due_at=None
            )
            return None
        level = cache.level(escalation.policy_id, escalation.next_position)
        if level is None:
            IncidentEscalation.objects.filter(pk=escalation.pk).update(
                stopped_at=now, stopped_reason=IncidentEscalation.Stop.EXHAUSTED, next_due_at=None
            )
            return None
        return _page(escalation, incident, level, cache, now)


def _page(escalation: IncidentEscalation, incident: Incident, level: EscalationLevel, cache: _Cache, now):
    due_at = escalation.next_due_at
    late = (now - due_at).total_seconds() > settings.ONCALL_ESCALATION_LATE_SECONDS
    people = _recipients(level, cache, now)
    step = EscalationStep.objects.create(
        escalation=escalation,
        position=level.position,
        level_name=level.name,
        due_at=due_at,
        paged_at=now,
        late=late,
        recipients=[u.get_username() for u in people],
    )
    following = cache.level(escalation.policy_id, level.position + 1)
    clock = (
        {"next_due_at": due_at + datetime.timedelta(minutes=level.wait_minutes)}
        if following
        else {"next_due_at": None, "stopped_at": now, "stopped_reason": IncidentEscalation.Stop.EXHAUSTED}
    )
    IncidentEscalation.objects.filter(pk=escalation.pk).update(
        current_position=level.position, next_position=level.position + 1, **clock
    )
    names = ", ".join(str(u) for u in people) or "nobody (no one on call, no named people)"
    delay = f" — late by {int((now - due_at).total_seconds() // 60)} min" if late else ""
    timeline_add_event(
        incident=incident,
        kind=EventKind.ESCALATION,
        text=f"Escalated to **L{level.position} {level.name}**: paged {names}{delay}.",
        author_label="escalation",
        occurred_at=now,
        data={"level": level.position, "recipients": step.recipients, "late": late, "due_at": due_at.isoformat()},
    )
    notifications.notify(
        event="incident.escalated",
        title=f"{incident.reference} escalated to L{level.position} {level.name}",
        # A restricted incident's title never leaves the console: the page says
        # only that one waits, and nothing goes to the shared channel.
        text=(
            "A restricted incident is not acknowledged"
            if incident.restricted
            else f"{incident.title} is not acknowledged"
        )
        + f". You are paged as L{level.position} {level.name}{delay}.",
        url=reverse("incidents:detail", args=[incident.reference]),
        service=incident.services.first(),
        emails=[u.email for u in people if u.email],
        webhook=not incident.restricted,
    )
    audit.record(
        None,
        "oncall.escalate",
        incident,
        after={"level": level.position, "recipients": step.recipients, "late": late},
    )
    transaction.on_commit(lambda: ESCALATIONS.labels("late" if late else "on_time").inc())
    return step


POLICY_FIELDS = ("name", "is_default")


@transaction.atomic
def policy_save(*, actor, policy: EscalationPolicy | None, name: str, is_default: bool, services, levels: list[dict]):
    """Create or replace a policy: its services (taken from any other policy that
    had them), default flag and levels. Running escalations keep their clock and
    page the new levels by position. Validates before writing anything."""
    from opsconsole.roles import check_capability

    from .models import PolicyService

    check_capability(actor, "schedule.edit")
    name = (name or "").strip()
    if not name or not levels:
        raise ValidationError("A policy needs a name and at least one level.")
    clash = EscalationPolicy.objects.filter(name__iexact=name).exclude(pk=getattr(policy, "pk", None)).exists()
    if clash:
        raise ValidationError({"name": "Another policy has that name."})
    before = None
    if policy is None:
        policy = EscalationPolicy(name=name)
    else:
        policy = EscalationPolicy.objects.select_for_update().get(pk=policy.pk)
        before = {"name": policy.name, "is_default": policy.is_default, "levels": _levels_snapshot(policy)}
    if is_default:
        EscalationPolicy.objects.exclude(pk=policy.pk).filter(is_default=True).update(is_default=False)
    policy.name, policy.is_default = name, is_default
    policy.save()
    PolicyService.objects.filter(service__in=list(services)).exclude(policy=policy).delete()
    PolicyService.objects.filter(policy=policy).exclude(service__in=list(services)).delete()
    for service in services:
        PolicyService.objects.get_or_create(service=service, defaults={"policy": policy})
    policy.levels.all().delete()
    for position, data in enumerate(levels, start=1):
        level = EscalationLevel.objects.create(
            policy=policy,
            position=position,
            name=data["name"],
            wait_minutes=data["wait_minutes"],
            rotation=data["rotation"],
        )
        level.users.set(data["users"])
    after = {
        "name": name,
        "is_default": is_default,
        "levels": _levels_snapshot(policy),
        "services": sorted(s.slug for s in services),
    }
    audit.record(actor, "oncall.policy_save", policy, before=before, after=after)
    return policy


def _levels_snapshot(policy: EscalationPolicy) -> list:
    return [
        [lv.position, lv.name, lv.wait_minutes, lv.rotation_id, sorted(u.pk for u in lv.users.all())]
        for lv in policy.levels.prefetch_related("users")
    ]
