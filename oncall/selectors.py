"""Reads of the on-call app: who is on call, and when."""

import datetime

from django.contrib.auth import get_user_model
from django.db.models import F, OuterRef, Prefetch, Q, QuerySet, Subquery, Window
from django.db.models.functions import RowNumber
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from opsconsole.models import Service, User
from opsconsole.roles import has_capability

from .handoffs import overdue_before
from .models import (
    CalendarFeed,
    EscalationLevel,
    EscalationPolicy,
    Handoff,
    HandoffMessage,
    IncidentEscalation,
    Override,
    Rotation,
    RotationMember,
    Shift,
)


def rotations_covering(service: Service | None) -> QuerySet[Rotation]:
    """Rotations paged for `service`: those naming it plus those naming no service.
    With service None: every rotation."""
    if service is None:
        return Rotation.objects.all()
    return Rotation.objects.filter(Q(services__isnull=True) | Q(services=service)).distinct()


def on_call_now(service: Service | None = None, at: datetime.datetime | None = None) -> list[User]:
    """Users on a shift at `at` (default: now) in a rotation covering `service`
    (every rotation when service is None). Distinct, ordered by username. One query."""
    at = at or timezone.now()
    rotation_ids = rotations_covering(service).values("pk")
    users = (
        get_user_model()
        .objects.filter(
            is_active=True,
            shifts__rotation__in=rotation_ids,
            shifts__starts_at__lte=at,
            shifts__ends_at__gt=at,
        )
        .distinct()
        .order_by("username")
    )
    return list(users)


def upcoming_shifts(rotation: Rotation, limit: int = 10) -> list[Shift]:
    """The rotation's current shift (if any) and the next ones, soonest first."""
    now = timezone.now()
    return list(
        Shift.objects.filter(rotation=rotation, ends_at__gt=now).select_related("user").order_by("starts_at")[:limit]
    )


def rotations_overview(
    *,
    limit: int = 6,
    at: datetime.datetime | None = None,
    horizon_days: int = 14,
    rotation_ids: list[int] | None = None,
) -> list[Rotation]:
    """Every rotation with its services and its current and next shifts
    (`rotation.current_shifts` / `rotation.next_shifts`, within `horizon_days`),
    in a constant number of queries."""
    at = at or timezone.now()
    horizon = at + datetime.timedelta(days=horizon_days)
    queryset = Rotation.objects.all() if rotation_ids is None else Rotation.objects.filter(pk__in=rotation_ids)
    rotations = list(
        queryset.prefetch_related(
            "services",
            Prefetch("members", queryset=RotationMember.objects.select_related("user").order_by("position")),
            Prefetch(
                "overrides",
                queryset=Override.objects.filter(ends_at__gt=at).select_related("user").order_by("starts_at"),
                to_attr="open_overrides",
            ),
            Prefetch(
                "shifts",
                queryset=Shift.objects.filter(ends_at__gt=at, starts_at__lt=horizon)
                .select_related("user")
                .order_by("starts_at"),
                to_attr="open_shifts",
            ),
        )
    )
    for rotation in rotations:
        rotation.current_shifts = [s for s in rotation.open_shifts if s.starts_at <= at]
        rotation.next_shifts = [s for s in rotation.open_shifts if s.starts_at > at][:limit]
        rotation.listed_shifts = rotation.current_shifts + rotation.next_shifts
    return rotations


def uncovered_rotation_count(at: datetime.datetime | None = None) -> int:
    """Rotations with nobody on call at `at` (default: now)."""
    at = at or timezone.now()
    covered = Shift.objects.filter(starts_at__lte=at, ends_at__gt=at).values("rotation_id")
    return Rotation.objects.exclude(pk__in=covered).count()


def dashboard_panel_context(request) -> dict:
    """Dashboard "On call now and next": each rotation, who holds it and who is next (2 queries)."""
    rotations = list(Rotation.objects.all()[:20])
    now_next = now_and_next([r.pk for r in rotations])
    rows = [(rotation, *now_next.get(rotation.pk, (None, None))) for rotation in rotations]
    return {"rows": rows, "uncovered": sum(1 for _rotation, current, _next in rows if current is None)}


def now_and_next(rotation_ids: list[int], at: datetime.datetime | None = None) -> dict[int, tuple]:
    """{rotation id: (current shift or None, next shift or None)} in one query:
    the current shift and the first one starting after `at`, per rotation."""
    at = at or timezone.now()
    result: dict[int, list] = {pk: [None, None] for pk in rotation_ids}
    # Two rows per rotation are enough (shifts never overlap): the window
    # function keeps the rows read constant whatever the horizon holds.
    ranked = Shift.objects.filter(pk__in=_first_two_per_rotation(rotation_ids, at)).select_related("user")
    for shift in sorted(ranked, key=lambda s: s.starts_at):
        slot = result[shift.rotation_id]
        if shift.starts_at <= at and slot[0] is None:
            slot[0] = shift
        elif shift.starts_at > at and slot[1] is None:
            slot[1] = shift
    return {pk: tuple(pair) for pk, pair in result.items()}


def _first_two_per_rotation(rotation_ids: list[int], at: datetime.datetime) -> QuerySet:
    return (
        Shift.objects.filter(rotation_id__in=rotation_ids, ends_at__gt=at)
        .annotate(rank=Window(RowNumber(), partition_by=[F("rotation_id")], order_by=F("starts_at").asc()))
        .filter(rank__lte=2)
        .values("pk")
    )


def calendar(
    *, start: datetime.date, days: int, tz: datetime.tzinfo, rotation_ids: list[int] | None = None
) -> tuple[list[Rotation], list[dict]]:
    """The coming `days` days from `start` (in the viewer's timezone `tz`): one row
    per day with, per rotation, the shifts that touch that day. Two queries."""
    rotations = list(Rotation.objects.all() if rotation_ids is None else Rotation.objects.filter(pk__in=rotation_ids))
    begin = datetime.datetime.combine(start, datetime.time(), tzinfo=tz)
    end = datetime.datetime.combine(start + datetime.timedelta(days=days), datetime.time(), tzinfo=tz)
    shifts = list(
        Shift.objects.filter(rotation__in=rotations, ends_at__gt=begin, starts_at__lt=end)
        .select_related("user")
        .order_by("starts_at")
    )
    rows = []
    for offset in range(days):
        day = start + datetime.timedelta(days=offset)
        day_start = datetime.datetime.combine(day, datetime.time(), tzinfo=tz)
        day_end = datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time(), tzinfo=tz)
        cells = [
            [s for s in shifts if s.rotation_id == rotation.pk and s.starts_at < day_end and s.ends_at > day_start]
            for rotation in rotations
        ]
        rows.append({"day": day, "cells": cells, "is_weekend": day.weekday() >= 5})
    return rotations, rows


def user_shifts(user: User, since: datetime.datetime, until: datetime.datetime) -> list[Shift]:
    """The person's shifts overlapping [since, until), with their rotations (one query)."""
    return list(
        Shift.objects.filter(user=user, ends_at__gt=since, starts_at__lt=until)
        .select_related("rotation")
        .order_by("starts_at")
    )


def live_feed(raw_token: str):
    """The live (not revoked) calendar feed for a raw token, or None."""
    if not raw_token or len(raw_token) > 100:
        return None
    return (
        CalendarFeed.objects.filter(token_hash=CalendarFeed.hash(raw_token), revoked_at__isnull=True)
        .select_related("user")
        .first()
    )


def user_live_feed(user: User) -> CalendarFeed | None:
    """The person's live feed (for its created / last used times), or None."""
    return CalendarFeed.objects.filter(user=user, revoked_at__isnull=True).order_by("-created_at").first()


class OncallCollector:
    """/metrics, read at scrape time: rotations with nobody on call now, handoffs
    not acknowledged in time, escalations running. (Escalation levels paged,
    on time or late, are the counter opsconsole_oncall_escalations_total.)"""

    def collect(self):
        gauge = GaugeMetricFamily("opsconsole_oncall_uncovered_rotations", "Rotations with nobody on call right now.")
        gauge.add_metric([], uncovered_rotation_count())
        yield gauge
        gauge = GaugeMetricFamily(
            "opsconsole_oncall_handoffs_unacknowledged",
            "Handoffs submitted longer than ONCALL_HANDOFF_ACK_MINUTES ago and not confirmed.",
        )
        gauge.add_metric([], unacknowledged_overdue_count())
        yield gauge
        gauge = GaugeMetricFamily(
            "opsconsole_oncall_escalations_running", "Incidents whose escalation is still paging levels."
        )
        gauge.add_metric([], IncidentEscalation.objects.filter(stopped_at__isnull=True).count())
        yield gauge


def policies_overview() -> list:
    """Every escalation policy with its services and levels (people, rotation), in 4 queries."""
    return list(
        EscalationPolicy.objects.prefetch_related(
            "services",
            Prefetch(
                "levels",
                queryset=EscalationLevel.objects.select_related("rotation")
                .prefetch_related("users")
                .order_by("position"),
            ),
        )
    )


def escalation_panel_context(request, incident) -> dict:
    """The incident page's escalation panel: current level, who was paged when,
    when the next level is due (3 queries)."""
    state = IncidentEscalation.objects.filter(incident_id=incident.pk).select_related("policy").first()
    if state is None:
        return {"escalation": None}
    steps = list(state.steps.order_by("position"))
    following = None
    if state.next_due_at is not None:
        following = EscalationLevel.objects.filter(policy_id=state.policy_id, position=state.next_position).first()
    return {"escalation": state, "steps": steps, "next_level": following}


def current_rotation_of(user) -> Rotation | None:
    """The rotation the person is on call for now (else the first one)."""
    now = timezone.now()
    shift = Shift.objects.filter(user=user, starts_at__lte=now, ends_at__gt=now).select_related("rotation").first()
    return shift.rotation if shift else Rotation.objects.first()


def handoffs_with_items() -> QuerySet:
    return Handoff.objects.select_related(
        "rotation", "outgoing", "incoming", "acknowledged_by", "questioned_by"
    ).prefetch_related("items", Prefetch("messages", queryset=HandoffMessage.objects.select_related("author")))


def handoff_history(rotation: Rotation | None, limit: int = 100) -> list:
    queryset = Handoff.objects.select_related("rotation", "outgoing", "incoming", "acknowledged_by")
    if rotation is not None:
        queryset = queryset.filter(rotation=rotation)
    return list(queryset.order_by("-submitted_at")[:limit])


def handoff_panel_rows() -> list[dict]:
    """Dashboard: each rotation's last handoff, whether it was confirmed, and
    whether it is overdue (unconfirmed past ONCALL_HANDOFF_ACK_MINUTES). 2 queries."""
    latest = Handoff.objects.filter(rotation=OuterRef("pk")).order_by("-submitted_at", "-pk").values("pk")[:1]
    rows = list(
        Handoff.objects.filter(pk__in=Rotation.objects.annotate(last=Subquery(latest)).values("last"))
        .select_related("rotation", "outgoing", "incoming")
        .order_by("rotation__name")
    )
    limit = overdue_before()
    return [{"handoff": h, "overdue": h.status != h.Status.ACKNOWLEDGED and h.submitted_at < limit} for h in rows]


def unacknowledged_overdue_count() -> int:
    return Handoff.objects.exclude(status=Handoff.Status.ACKNOWLEDGED).filter(submitted_at__lt=overdue_before()).count()


def handoff_panel_context(request) -> dict:
    return {"rows": handoff_panel_rows(), "can_write": has_capability(request.user, "handoff.write")}
