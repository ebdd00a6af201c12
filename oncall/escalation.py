"""Escalation: an unacknowledged incident pages the next level by itself.

The clock. Starting an escalation (an incident opened — incidents' hook)
pages level 1 at once; level n+1 is due `wait_minutes` of level n after
level n was *due* (not after it was sent), so the ladder keeps the times it
promised even when a page went out late.

Paging is batched (oncall/sweep.py): one sweep claims up to SWEEP_BATCH due
escalations with SELECT … FOR UPDATE SKIP LOCKED and pages their levels in one
transaction and a constant number of statements: steps (unique per escalation
and level), clocks, timeline events, deliveries and audit entries in bulk. A
worker killed anywhere in there rolls it all back, so the next sweep pages
those levels again, once; a sweep that runs twice, or two workers at once,
find the rows locked or the levels already advanced. The deliveries
themselves are sent after commit by the notifications app (claimed with a
lease: sent once, retried, dead letters listed).

Late. Beat down for an hour: the next sweep pages every level that fell due
meanwhile, in order, each once, marked late (sent more than
ONCALL_ESCALATION_LATE_SECONDS after it was due) on the step and the timeline.
"""

import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from incidents.models import EventKind, Incident, Status
from incidents.services import timeline_add_event
from opsconsole import audit

from .models import EscalationLevel, EscalationPolicy, IncidentEscalation
from .sweep import ESCALATIONS, SWEEP_BATCH, advance, escalate_due  # noqa: F401 - the public names


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


def escalation_start(
    *, incident: Incident, now: datetime.datetime | None = None, webhook: bool = True
) -> IncidentEscalation | None:
    """Start the incident's escalation and page level 1 now, in the caller's
    transaction (the incident's declare). Idempotent: an incident has one
    escalation; a second call returns it and pages nobody. The level-1 step
    is on `escalation.first_step` (None when nothing was paged), so the
    declare's announcement can leave out the people just paged.
    `webhook` False: the declare's own announcement posts to the channel."""
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
        escalation.first_step = None
        if created:
            audit.record(None, "oncall.escalation_start", incident, after={"policy": policy.name})
            escalation.first_step = advance(escalation.pk, now=now, webhook=webhook)
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


POLICY_FIELDS = ("name", "is_default")


class StaleEdit(ValidationError):
    """Someone saved the policy since this form was drawn."""


@transaction.atomic
def policy_save(
    *,
    actor,
    policy: EscalationPolicy | None,
    name: str,
    is_default: bool,
    services,
    levels: list[dict],
    version: int | None = None,
):
    """Create or replace a policy: its services (taken from any other policy that
    had them), default flag and levels (in the given order). Running escalations
    keep their clock and page the new levels by position. Validates before
    writing anything. `version`: the one the editor saw; if the policy moved
    on since (another Manager saved), refused with StaleEdit and nothing written
    (checked under the policy's row lock, so two saves at once cannot both pass)."""
    from opsconsole.roles import check_capability

    from .models import PolicyService

    check_capability(actor, "schedule.edit")
    name = (name or "").strip()
    if not name or not levels:
        raise ValidationError("A policy needs a name and at least one level.")
    for level in levels:
        if not level.get("rotation") and not level.get("users"):
            raise ValidationError(f"Level “{level.get('name')}”: name a rotation or people to page.")
    clash = EscalationPolicy.objects.filter(name__iexact=name).exclude(pk=getattr(policy, "pk", None)).exists()
    if clash:
        raise ValidationError({"name": "Another policy has that name."})
    before = None
    if policy is None:
        policy = EscalationPolicy(name=name)
    else:
        policy = EscalationPolicy.objects.select_for_update().get(pk=policy.pk)
        if version is not None and policy.version != version:
            raise StaleEdit(
                "Someone else saved this policy after you opened it. Reload the page to see their "
                "version, then make your change again."
            )
        before = {"name": policy.name, "is_default": policy.is_default, "levels": _levels_snapshot(policy)}
        policy.version += 1
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
