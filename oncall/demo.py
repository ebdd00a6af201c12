"""Demo on-call data: a "Primary SRE" rotation (sre and commander, 12-hour
shifts handed over at 08:00 and 20:00 London time) and a "Database" rotation
(manager and admin, weekly, covering PostgreSQL), their computed shifts, an
escalation policies with the seeds' ladder and a handoff. Idempotent: a rotation
that has members already is left as it is."""

import datetime

from django.utils import timezone

from opsconsole.models import Service, User

from . import handoffs, services
from .models import EscalationLevel, EscalationPolicy, Handoff, PolicyService, Rotation, ShiftLength

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
    _seed_policy(users)
    _seed_handoff(users)


# The seeds' escalation ladder (001, "Escalation Contacts").
LADDER = [
    ("On-call engineer", "rotation", 15),
    ("Team lead", "commander", 30),
    ("CTO", "manager", 60),
    ("CEO", "admin", 120),
]


def _seed_policy(users: dict) -> None:
    policy, created = EscalationPolicy.objects.get_or_create(
        name="Default ladder",
        defaults={
            "description": "L1 on-call engineer 15 min, L2 team lead 30 min, L3 CTO 1 h, L4 CEO 2 h.",
            "is_default": True,
        },
    )
    if not created:
        return
    primary = Rotation.objects.get(name="Primary SRE")
    for position, (name, who, wait) in enumerate(LADDER, start=1):
        level = EscalationLevel.objects.create(
            policy=policy,
            position=position,
            name=name,
            wait_minutes=wait,
            rotation=primary if who == "rotation" else None,
        )
        if who != "rotation":
            level.users.add(users[who])
    database = EscalationPolicy.objects.create(
        name="Database ladder", description="PostgreSQL first to the DB rotation."
    )
    for service in Service.objects.filter(slug="postgresql"):
        PolicyService.objects.create(policy=database, service=service)
    EscalationLevel.objects.create(
        policy=database,
        position=1,
        name="Database on-call",
        rotation=Rotation.objects.get(name="Database"),
        wait_minutes=15,
    )
    level = EscalationLevel.objects.create(policy=database, position=2, name="CTO", wait_minutes=60)
    level.users.add(users["manager"])


def _seed_handoff(users: dict) -> None:
    primary = Rotation.objects.get(name="Primary SRE")
    if Handoff.objects.filter(rotation=primary).exists():
        return
    handoffs.handoff_submit(
        actor=users["sre"],
        rotation=primary,
        incoming=users["commander"],
        notes={},
        closed=set(),
        new_items=["Disk on db-2 at 81% — cleanup job scheduled"],
        recent_changes="Deployed api 4.2 at 14:10; config change to the queue workers.",
        known_issues="TLS expiry check flaps on the staging host.",
    )
