"""Small helpers shared by the lifecycle modules: references, snapshots, service lookup."""

from collections.abc import Iterable
from datetime import datetime

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from opsconsole import audit
from opsconsole.badinput import as_pk
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


def next_reference(when: datetime | None = None) -> str:
    """A fresh incident id, taken now. Called outside a transaction (the
    Alertmanager webhook, before its own), the counter row is locked for this
    one statement; inside one (every declare) it stays locked until commit,
    so a delivery that opens an incident would make every other one wait."""
    return _next_reference(when or timezone.now())


def _snapshot(incident: Incident) -> dict:
    return audit.snapshot(incident, INCIDENT_FIELDS)


def _resolve_services(services: Iterable) -> tuple[list[Service], list[str]]:
    """Service objects, pks, slugs or names → (services, names not found).

    Each value is tried as a slug, then a name (any case), then a pk, in one
    query for all of them: an Alertmanager delivery names a service per alert."""
    items = [item if isinstance(item, Service) else str(item).strip() for item in services or ()]
    values = [item for item in items if isinstance(item, str) and item]
    by_slug: dict[str, Service] = {}
    by_name: dict[str, Service] = {}
    by_pk: dict[int, Service] = {}
    if values:
        match = Q(slug__in=values) | Q(pk__in=[pk for v in values if (pk := as_pk(v)) is not None])
        for value in dict.fromkeys(values):
            match |= Q(name__iexact=value)
        for service in Service.objects.filter(match):  # Meta ordering: the first match wins, as before
            by_slug.setdefault(service.slug, service)
            by_name.setdefault(service.name.casefold(), service)
            by_pk.setdefault(service.pk, service)
    found, missing = [], []
    for item in items:
        if isinstance(item, Service):
            found.append(item)
        elif item:
            service = by_slug.get(item) or by_name.get(item.casefold()) or by_pk.get(as_pk(item))
            (found.append(service) if service else missing.append(item))
    return found, missing


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60}h {minutes % 60}m" if minutes >= 60 else f"{minutes}m"
