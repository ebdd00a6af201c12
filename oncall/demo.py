"""Demo on-call data: a "Primary SRE" rotation (sre and commander alternating
12-hour shifts from the start of today for 8 days) and a "Database" rotation
(manager, covering PostgreSQL). Idempotent: shifts that exist are kept, the
missing ones are added; running it again adds nothing."""

import datetime

from django.utils import timezone

from opsconsole.models import Service, User

from . import services
from .models import Rotation, Shift

DAYS = 8  # today and the next 7 days


def _day_start() -> datetime.datetime:
    now = timezone.now().astimezone(datetime.UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _ensure_shift(rotation: Rotation, user: User, starts_at: datetime.datetime, hours: int) -> bool:
    ends_at = starts_at + datetime.timedelta(hours=hours)
    if Shift.objects.filter(rotation=rotation, starts_at__lt=ends_at, ends_at__gt=starts_at).exists():
        return False  # this slot is taken already (by an earlier seed or by hand)
    services.shift_create(actor=None, rotation=rotation, user=user, starts_at=starts_at, ends_at=ends_at)
    return True


def seed(stdout) -> None:
    users = {user.username: user for user in User.objects.filter(username__in=["sre", "commander", "manager"])}
    if len(users) < 3:
        stdout.write("oncall: demo users missing, skipped")
        return
    primary, _ = Rotation.objects.get_or_create(
        name="Primary SRE",
        defaults={
            "description": "First responder for every service: alerts, missed checklists, "
            "incidents without a commander.",
            "timezone": "Europe/London",
        },
    )
    database, created = Rotation.objects.get_or_create(
        name="Database",
        defaults={
            "description": "PostgreSQL primary and replica: replication, failover, disk.",
            "timezone": "Asia/Singapore",
        },
    )
    postgres = Service.objects.filter(slug="postgresql").first()
    if created and postgres is not None:
        database.services.add(postgres)
    start = _day_start()
    added = 0
    for half_day in range(DAYS * 2):
        # sre takes the day (00–12 UTC), commander the night (12–24 UTC).
        user = users["sre"] if half_day % 2 == 0 else users["commander"]
        added += _ensure_shift(primary, user, start + datetime.timedelta(hours=12 * half_day), 12)
    for day in range(DAYS):
        added += _ensure_shift(database, users["manager"], start + datetime.timedelta(days=day), 24)
    stdout.write(f"oncall: 2 rotations, {added} new shifts")
