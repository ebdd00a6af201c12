"""Demo on-call data: a "Primary SRE" rotation (sre and commander, 12-hour
shifts handed over at 08:00 and 20:00 London time) and a "Database" rotation
(manager and admin, weekly, covering PostgreSQL), their computed shifts, an
escalation policy with the seeds' ladder and a handoff. Idempotent: a rotation
that has members already is left as it is."""

import datetime

from django.utils import timezone

from opsconsole.models import Service, User

from . import services
from .models import Rotation, ShiftLength

ROTATIONS = [
    (
        "Primary SRE",
        "First responder for every service: alerts, missed checklists, incidents without a commander.",
        {
            "timezone": "Europe/London",
            "shift_length": ShiftLength.CUSTOM,
            "custom_hours": 12,
            "handoff_time": datetime.time(8, 0),
        },
        ["sre", "commander"],
        None,
    ),
    (
        "Database",
        "PostgreSQL primary and replica: replication, failover, disk.",
        {
            "timezone": "Asia/Singapore",
            "shift_length": ShiftLength.WEEKLY,
            "custom_hours": 12,
            "handoff_time": datetime.time(10, 0),
        },
        ["manager", "admin"],
        "postgresql",
    ),
]


def seed(stdout) -> None:
    users = {user.username: user for user in User.objects.filter(username__in=["sre", "commander", "manager", "admin"])}
    if len(users) < 4:
        stdout.write("oncall: demo users missing, skipped")
        return
    configured = 0
    for name, description, settings, members, service_slug in ROTATIONS:
        rotation, created = Rotation.objects.get_or_create(name=name, defaults={"description": description})
        if created and service_slug and (service := Service.objects.filter(slug=service_slug).first()):
            rotation.services.add(service)
        if rotation.members.exists():
            services.rotation_materialise(rotation=rotation)  # extends the window; changes nothing else
            continue
        start = timezone.localdate() - datetime.timedelta(days=7)
        services.rotation_update(
            actor=None,
            rotation=rotation,
            member_ids=[users[m].pk for m in members],
            start_date=start,
            **settings,
        )
        configured += 1
    stdout.write(f"oncall: {len(ROTATIONS)} rotations, {configured} newly configured")
