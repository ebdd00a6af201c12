"""Small helpers shared by the lifecycle modules: references, snapshots, service lookup."""

from collections.abc import Iterable
from datetime import datetime

from django.db import connection
from django.utils import timezone

from opsconsole import audit
from opsconsole.models import Service

from ..models import DailyCounter, Incident

INCIDENT_FIELDS = (
    "reference",
    "title",
    "summary",
    "severity_id",
    "status",
    "commander_id",
    "comms_lead_id",
    "tags",
    "customer_impact",
    "restricted",
    "dedup_key",
)


def _next_reference(when: datetime) -> str:
    """INC-YYYY-MM-DD-NNN, unique even for concurrent declares.

    One atomic upsert: the first declare of a day inserts the counter row,
    the others increment it. The row lock taken by ON CONFLICT DO UPDATE
    serialises concurrent declares (the second waits for the first to
    commit and then reads its value), so no two get the same number; the
    unique constraint on Incident.reference is the backstop.
    """
    day = timezone.localtime(when, timezone=timezone.get_fixed_timezone(0)).date()
    table = DailyCounter._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (day, last) VALUES (%s, 1) "
            f"ON CONFLICT (day) DO UPDATE SET last = {table}.last + 1 RETURNING last",  # nosec B608  # _meta table
            [day],
        )
        number = cursor.fetchone()[0]
    return f"INC-{day:%Y-%m-%d}-{number:03d}"


def _snapshot(incident: Incident) -> dict:
    return audit.snapshot(incident, INCIDENT_FIELDS)


def _resolve_services(services: Iterable) -> tuple[list[Service], list[str]]:
    """Service objects, pks, slugs or names → (services, names not found)."""
    found, missing = [], []
    for item in services or ():
        if isinstance(item, Service):
            found.append(item)
            continue
        value = str(item).strip()
        if not value:
            continue
        service = (
            Service.objects.filter(slug=value).first()
            or Service.objects.filter(name__iexact=value).first()
            or (Service.objects.filter(pk=int(value)).first() if value.isdigit() else None)
        )
        (found.append(service) if service else missing.append(value))
    return found, missing


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60}h {minutes % 60}m" if minutes >= 60 else f"{minutes}m"
