"""Reads of the on-call app: who is on call, and when."""

import datetime

from django.contrib.auth import get_user_model
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from opsconsole.models import Service, User

from .models import Rotation, Shift


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
    """Dashboard "On call now": each rotation and who holds it (2 queries)."""
    now = timezone.now()
    current = Shift.objects.filter(starts_at__lte=now, ends_at__gt=now).select_related("user").order_by("starts_at")
    by_rotation: dict[int, list[Shift]] = {}
    for shift in current:
        by_rotation.setdefault(shift.rotation_id, []).append(shift)
    rows = [(rotation, by_rotation.get(rotation.pk, [])) for rotation in Rotation.objects.all()[:20]]
    return {"rows": rows, "uncovered": sum(1 for _rotation, shifts in rows if not shifts)}


class UncoveredRotationsCollector:
    """/metrics: rotations with nobody on call right now (read at scrape time)."""

    def collect(self):
        gauge = GaugeMetricFamily("opsconsole_oncall_uncovered_rotations", "Rotations with nobody on call right now.")
        gauge.add_metric([], uncovered_rotation_count())
        yield gauge
