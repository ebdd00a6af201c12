"""Writes of the on-call app. Each owns its transaction and its audit entry."""

import datetime
import zoneinfo

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from opsconsole import audit
from opsconsole.models import User
from opsconsole.roles import check_capability

from .models import Rotation, Shift

SHIFT_FIELDS = ("rotation_id", "user_id", "starts_at", "ends_at")


def _when(value: datetime.datetime, tz_name: str) -> str:
    return timezone.localtime(value, timezone=zoneinfo.ZoneInfo(tz_name)).strftime("%a %d %b %H:%M")


@transaction.atomic
def shift_create(
    *,
    actor: User | None,
    rotation: Rotation,
    user: User,
    starts_at: datetime.datetime,
    ends_at: datetime.datetime,
) -> Shift:
    """Put `user` on call for `rotation` from starts_at to ends_at.

    Refuses (ValidationError, nothing written) an end not after the start or a
    shift overlapping another one of the same rotation. Race-safe: the
    rotation row is locked (select_for_update) while checking and inserting,
    so two managers adding overlapping shifts at once cannot both succeed.
    `actor` None is the system (demo data).
    """
    if actor is not None:
        check_capability(actor, "schedule.edit")
    if ends_at <= starts_at:
        raise ValidationError({"ends_at": "The shift must end after it starts."})
    # Serialises shift writes per rotation: the overlap check below is only
    # true until commit if nobody else can insert in between.
    rotation = Rotation.objects.select_for_update().get(pk=rotation.pk)
    clash = (
        Shift.objects.filter(rotation=rotation, starts_at__lt=ends_at, ends_at__gt=starts_at)
        .select_related("user")
        .order_by("starts_at")
        .first()
    )
    if clash is not None:
        tz = rotation.timezone
        start, end = _when(clash.starts_at, tz), _when(clash.ends_at, tz)
        raise ValidationError(
            f"This shift overlaps {clash.user}'s shift ({start} – {end}, {tz}) "
            f"in {rotation.name}. Shifts of one rotation cannot overlap."
        )
    shift = Shift.objects.create(rotation=rotation, user=user, starts_at=starts_at, ends_at=ends_at)
    audit.record(actor, "oncall.shift_create", shift, after=audit.snapshot(shift, SHIFT_FIELDS))
    return shift


@transaction.atomic
def shift_delete(*, actor: User, shift: Shift) -> None:
    """Remove a shift. Idempotent: deleting a shift that is already gone does nothing."""
    check_capability(actor, "schedule.edit")
    locked = Shift.objects.select_for_update().filter(pk=shift.pk).first()
    if locked is None:
        return
    before = audit.snapshot(locked, SHIFT_FIELDS)
    audit.record(actor, "oncall.shift_delete", locked, before=before)
    locked.delete()
