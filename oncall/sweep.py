"""The escalation sweep, batched: pages every due level of up to SWEEP_BATCH
escalations in one transaction and a constant number of statements.

One round (`_round`), inside one transaction:

1. claim the due escalations: SELECT … FOR UPDATE SKIP LOCKED … LIMIT batch
   (rows another worker holds are skipped, not waited for), with their
   incidents;
2. read what the claimed rows need, once per round, not per incident: the
   levels of their policies (with named people), who is on call now in the
   rotations those levels name, each incident's first service (its webhook);
3. write in bulk: the EscalationSteps (unique per escalation and level), the
   moved clocks (one UPDATE from unnest()ed arrays), the timeline events
   (incidents.services.timeline_add_events, each with its `oncall.escalate`
   audit entry: one per level paged) and the deliveries
   (notifications.services.notify_many, enqueued after commit).

A worker killed anywhere in there (SIGKILL) rolls the whole round back: the
next sweep claims the same rows and pages each level once. A second sweep
running at once claims other rows or none. Each round pages at most one level
per escalation; the sweep repeats rounds until nothing is claimed, so after
beat was down every missed level is paged, in order, each once, marked late.
The number of rounds depends on how many levels fell due per incident (at
most the policy's length) and on the batch size, not on how many incidents
are open.
"""

import dataclasses
import datetime
import functools

from django.conf import settings
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from prometheus_client import Counter

from incidents.models import EventKind, Incident, Status
from incidents.services import timeline_add_events
from notifications import services as notifications
from opsconsole.bulk import insert_many
from opsconsole.models import User

from .models import EscalationLevel, EscalationStep, IncidentEscalation, Shift

ESCALATIONS = Counter(
    "opsconsole_oncall_escalations",
    "Escalation levels paged for unacknowledged incidents, by timeliness (on_time, late).",
    ["timeliness"],
)
SWEEP_BATCH = 500
# Safety net only: a round advances every row it claims, so rounds end by themselves.
MAX_ROUNDS = 1000


def escalate_due(now: datetime.datetime | None = None) -> dict[str, int]:
    """Beat: page every level that is due. Returns {"paged": n, "late": m}."""
    now = now or timezone.now()
    result = {"paged": 0, "late": 0}
    cache = _Cache(now)
    for _ in range(MAX_ROUNDS):
        claimed, steps = _round(now, cache)
        result["paged"] += len(steps)
        result["late"] += sum(step.late for step in steps)
        if not claimed:
            break
    return result


def advance(escalation_id: int, *, now: datetime.datetime | None = None, webhook: bool = True):
    """Page this escalation's next level if it is due (the same round, for one
    row: escalation_start pages level 1 with it). Returns the step, or None
    when nothing was due or another worker holds the row."""
    now = now or timezone.now()
    _claimed, steps = _round(now, _Cache(now), only=escalation_id, webhook=webhook)
    return steps[0] if steps else None


class _Cache:
    """What one sweep reads once: levels per policy, people on call per rotation."""

    def __init__(self, now: datetime.datetime) -> None:
        self.now = now
        self.levels: dict[int, dict[int, EscalationLevel]] = {}
        self.on_call: dict[int, list[User]] = {}
        self.paged: dict[int, _Recipients] = {}

    def load(self, policy_ids: set[int]) -> None:
        missing = policy_ids - self.levels.keys()
        if missing:
            for policy_id in missing:
                self.levels[policy_id] = {}
            levels = (
                EscalationLevel.objects.filter(policy_id__in=missing)
                .select_related("rotation")
                .prefetch_related("users")
            )
            for level in levels:
                self.levels[level.policy_id][level.position] = level
        rotations = {
            lv.rotation_id for pid in policy_ids for lv in self.levels[pid].values() if lv.rotation_id
        } - self.on_call.keys()
        if rotations:
            for rotation_id in rotations:
                self.on_call[rotation_id] = []
            shifts = Shift.objects.filter(
                rotation_id__in=rotations, starts_at__lte=self.now, ends_at__gt=self.now, user__is_active=True
            ).select_related("user")
            for shift in shifts:
                self.on_call[shift.rotation_id].append(shift.user)

    @functools.cached_property
    def incident_url(self) -> str:
        """reverse() once per sweep, not once per page ("<str:reference>" takes any reference)."""
        return reverse("incidents:detail", args=["REFERENCE"])

    def level(self, policy_id: int, position: int) -> EscalationLevel | None:
        return self.levels[policy_id].get(position)

    def recipients(self, level: EscalationLevel) -> "_Recipients":
        """Who a level pages, worked out once per level and sweep (hundreds of
        incidents paging the same level share it)."""
        if level.pk not in self.paged:
            people = list(self.on_call.get(level.rotation_id, [])) if level.rotation_id else []
            people += [u for u in level.users.all() if u.is_active]
            unique = sorted({u.pk: u for u in people}.values(), key=lambda u: u.get_username())
            self.paged[level.pk] = _Recipients(
                usernames=[u.get_username() for u in unique],
                emails=[u.email for u in unique if u.email],
                names=", ".join(str(u) for u in unique) or "nobody (no one on call, no named people)",
            )
        return self.paged[level.pk]


@dataclasses.dataclass(frozen=True)
class _Recipients:
    usernames: list[str]
    emails: list[str]
    names: str


def _first_services(incident_ids: list[int]) -> dict[int, object]:
    """Each incident's first service (the console's service order), in one query:
    its webhook is where the page goes, as `incident.services.first()` would say."""
    through = Incident.services.through
    first: dict[int, object] = {}
    rows = (
        through.objects.filter(incident_id__in=incident_ids)
        .select_related("service")
        .order_by("incident_id", "service__tier", "service__name", "service_id")
    )
    for row in rows:
        first.setdefault(row.incident_id, row.service)
    return first


def _round(now, cache: _Cache, *, only: int | None = None, webhook: bool = True):
    """Claim, read, write (module docstring). Returns (rows claimed, steps)."""
    with transaction.atomic():
        claim = IncidentEscalation.objects.select_for_update(skip_locked=True, of=("self",)).filter(
            stopped_at__isnull=True, next_due_at__lte=now
        )
        if only is not None:
            claim = claim.filter(pk=only)
        claimed = list(
            claim.select_related("incident")
            # The incident fields a page reads; the rest (summary, timers…) is not loaded.
            .only(*(f.attname for f in IncidentEscalation._meta.concrete_fields), *_INCIDENT_FIELDS)
            .order_by("next_due_at", "pk")[:SWEEP_BATCH]
        )
        if not claimed:
            return 0, []
        cache.load({e.policy_id for e in claimed})
        services = _first_services([e.incident_id for e in claimed])
        pages, changed = [], []
        for escalation in claimed:
            level = cache.level(escalation.policy_id, escalation.next_position)
            if escalation.incident.status != Status.TRIGGERED or level is None:
                # Acknowledged by a path that missed the hook, or no level left: stop quietly.
                escalation.stopped_at, escalation.next_due_at = now, None
                escalation.stopped_reason = (
                    IncidentEscalation.Stop.EXHAUSTED if level is None else IncidentEscalation.Stop.CLOSED
                )
                changed.append(escalation)
                continue
            pages.append(_Page(escalation, level, cache, now))
            changed.append(escalation)
        steps = insert_many([p.step for p in pages])
        _save_clocks(changed)
        if pages:
            timeline_add_events([p.timeline_event() for p in pages])
            notifications.notify_many([p.notice(services.get(p.incident.pk), webhook=webhook) for p in pages])
            late = sum(p.late for p in pages)
            transaction.on_commit(lambda: _count(len(pages) - late, late))
    return len(claimed), steps


_INCIDENT_FIELDS = ("incident__reference", "incident__title", "incident__status", "incident__restricted")
CLOCK_FIELDS = ["current_position", "next_position", "next_due_at", "stopped_at", "stopped_reason"]


def _save_clocks(changed: list[IncidentEscalation]) -> None:
    """One UPDATE for every claimed row. On PostgreSQL from unnest()ed arrays:
    Django's bulk_update builds a CASE per field and row, which costs more
    Python time than the whole rest of the round at 500 rows."""
    if connection.vendor != "postgresql":
        IncidentEscalation.objects.bulk_update(changed, CLOCK_FIELDS)
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE oncall_incidentescalation AS e SET current_position = v.cur, next_position = v.nxt, "
            "next_due_at = v.due, stopped_at = v.stopped, stopped_reason = v.reason "
            "FROM unnest(%s::bigint[], %s::int[], %s::int[], %s::timestamptz[], %s::timestamptz[], %s::text[]) "
            "AS v(id, cur, nxt, due, stopped, reason) WHERE e.id = v.id",
            [
                [e.pk for e in changed],
                [e.current_position for e in changed],
                [e.next_position for e in changed],
                [e.next_due_at for e in changed],
                [e.stopped_at for e in changed],
                [e.stopped_reason for e in changed],
            ],
        )


def _count(on_time: int, late: int) -> None:
    if on_time:
        ESCALATIONS.labels("on_time").inc(on_time)
    if late:
        ESCALATIONS.labels("late").inc(late)


class _Page:
    """One level paged for one escalation: the step, the clock moved on (on the
    claimed row, saved in bulk), and what the timeline and the people get."""

    def __init__(self, escalation: IncidentEscalation, level: EscalationLevel, cache: _Cache, now) -> None:
        self.escalation, self.level, self.incident = escalation, level, escalation.incident
        self.due_at = escalation.next_due_at
        self.now = now
        self.late = (now - self.due_at).total_seconds() > settings.ONCALL_ESCALATION_LATE_SECONDS
        self.people = people = cache.recipients(level)
        self.step = EscalationStep(
            escalation=escalation,
            position=level.position,
            level_name=level.name,
            due_at=self.due_at,
            paged_at=now,
            late=self.late,
            recipients=list(people.usernames),
        )
        self.step.paged_emails = self.emails = list(people.emails)
        escalation.current_position, escalation.next_position = level.position, level.position + 1
        if cache.level(escalation.policy_id, level.position + 1):
            escalation.next_due_at = self.due_at + datetime.timedelta(minutes=level.wait_minutes)
        else:
            escalation.next_due_at, escalation.stopped_at = None, now
            escalation.stopped_reason = IncidentEscalation.Stop.EXHAUSTED
        self.incident_url = cache.incident_url
        self.delay = f" — late by {int((now - self.due_at).total_seconds() // 60)} min" if self.late else ""

    def timeline_event(self) -> dict:
        names = self.people.names
        return {
            "incident": self.incident,
            "kind": EventKind.ESCALATION,
            "text": f"Escalated to **L{self.level.position} {self.level.name}**: paged {names}{self.delay}.",
            "author_label": "escalation",
            "occurred_at": self.now,
            "data": {
                "level": self.level.position,
                "recipients": self.step.recipients,
                "late": self.late,
                "due_at": self.due_at.isoformat(),
            },
            # The escalation's audit entry is its timeline event's.
            "audit": (
                "oncall.escalate",
                {"level": self.level.position, "recipients": self.step.recipients, "late": self.late},
            ),
        }

    def notice(self, service, *, webhook: bool) -> dict:
        incident = self.incident
        return {
            "event": "incident.escalated",
            "title": f"{incident.reference} escalated to L{self.level.position} {self.level.name}",
            # A restricted incident's title never leaves the console: the page says
            # only that one waits, and nothing goes to the shared channel.
            "text": (
                "A restricted incident is not acknowledged"
                if incident.restricted
                else f"{incident.title} is not acknowledged"
            )
            + f". You are paged as L{self.level.position} {self.level.name}{self.delay}.",
            "url": self.incident_url.replace("REFERENCE", incident.reference),
            "service": service,
            "emails": self.emails,
            "webhook": webhook and not incident.restricted,
            "subject": incident,
            "restricted": incident.restricted,
        }
