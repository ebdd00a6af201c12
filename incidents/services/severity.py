"""The SEV table and the Alertmanager label → SEV mapping (edited by Managers)."""

from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q

from opsconsole import audit
from opsconsole.roles import check_capability

from ..models import AlertSeverityMapping, Incident, SeverityLevel

# The seeds' table (001: "Incident Severity Levels"). The seeds give the
# response time only; the resolve targets are ours, editable by Managers.
DEFAULT_SEVERITY_LEVELS = [
    (1, "SEV-1", "Complete outage", "Platform down, data breach", 15, 4 * 60),
    (2, "SEV-2", "Major degradation", "Payment processing failed", 30, 8 * 60),
    (3, "SEV-3", "Partial degradation", "Slow response times", 2 * 60, 24 * 60),
    (4, "SEV-4", "Minor issue", "Non-critical bug", 4 * 60, 72 * 60),
]

# Alertmanager `severity` label values seen in the seeds (critical/high/medium) and common ones.
DEFAULT_ALERT_MAPPINGS = {
    "critical": 1,
    "page": 1,
    "high": 2,
    "error": 2,
    "major": 2,
    "warning": 3,
    "medium": 3,
    "minor": 4,
    "low": 4,
    "info": 4,
}


def ensure_defaults() -> None:
    """Create the SEV table and alert mappings if missing. Idempotent.

    The migration (incidents 0002) seeds them, so no request or alert path
    calls this: `seed_demo` does, and the tests' fixture after a
    transactional test's flush has emptied the tables (tests/conftest.py).
    """
    if SeverityLevel.objects.count() >= len(DEFAULT_SEVERITY_LEVELS):
        return
    for level, name, definition, examples, ack, resolve in DEFAULT_SEVERITY_LEVELS:
        SeverityLevel.objects.get_or_create(
            level=level,
            defaults={
                "name": name,
                "definition": definition,
                "examples": examples,
                "ack_target_minutes": ack,
                "resolve_target_minutes": resolve,
            },
        )
    for value, level in DEFAULT_ALERT_MAPPINGS.items():
        AlertSeverityMapping.objects.get_or_create(label_value=value, defaults={"severity_id": level})


def severity_level(level: int | SeverityLevel) -> SeverityLevel:
    if isinstance(level, SeverityLevel):
        return level
    try:
        return SeverityLevel.objects.get(pk=int(level))
    except (SeverityLevel.DoesNotExist, TypeError, ValueError):
        raise ValidationError(f"Unknown SEV level: {level!r}.") from None


def alert_severity(label_value: str | None) -> int:
    """The SEV for an Alertmanager severity label, via the Manager-edited mapping."""
    if label_value:
        mapping = AlertSeverityMapping.objects.filter(label_value__iexact=label_value.strip()).first()
        if mapping:
            return mapping.severity_id
    return settings.ALERT_DEFAULT_SEVERITY


def alert_severity_highest(label_values: Iterable[str | None]) -> int:
    """The highest SEV (lowest number) among several severity labels, in one
    query: a delivery's alerts may carry as many different labels as alerts."""
    default = settings.ALERT_DEFAULT_SEVERITY
    labels = {value.strip() for value in label_values if value and value.strip()}
    if not labels:
        return default
    match = Q()
    for label in labels:
        match |= Q(label_value__iexact=label)
    mapped: dict[str, int] = {}
    for mapping in AlertSeverityMapping.objects.filter(match):  # Meta ordering: the first wins, as in alert_severity
        mapped.setdefault(mapping.label_value.casefold(), mapping.severity_id)
    # A label without a mapping counts as the default SEV.
    return min(mapped.get(label.casefold(), default) for label in labels)


@transaction.atomic
def severity_level_update(
    *,
    actor,
    level: SeverityLevel,
    definition: str,
    examples: str,
    ack_target_minutes: int,
    resolve_target_minutes: int,
) -> SeverityLevel:
    """Edit one SEV row; open incidents of that level get the new deadlines."""
    check_capability(actor, "schedule.edit")
    if resolve_target_minutes < ack_target_minutes:
        raise ValidationError("The resolve target cannot be shorter than the acknowledge target.")
    fields = ("definition", "examples", "ack_target_minutes", "resolve_target_minutes")
    before = audit.snapshot(level, fields)
    level.definition, level.examples = definition, examples
    level.ack_target_minutes, level.resolve_target_minutes = (
        ack_target_minutes,
        resolve_target_minutes,
    )
    level.save(update_fields=list(fields))
    after = audit.snapshot(level, fields)
    if before != after:
        Incident.objects.open().filter(severity=level).update(
            ack_due_at=F("declared_at") + timedelta(minutes=ack_target_minutes),
            resolve_due_at=F("declared_at") + timedelta(minutes=resolve_target_minutes),
        )
        audit.record(actor, "incident.severity_level_update", level, before=before, after=after)
    return level


@transaction.atomic
def alert_mapping_set(*, actor, label_value: str, severity: int) -> AlertSeverityMapping:
    check_capability(actor, "schedule.edit")
    value = (label_value or "").strip().lower()
    if not value:
        raise ValidationError("Give the severity label value, e.g. “critical”.")
    level = severity_level(severity)
    mapping = AlertSeverityMapping.objects.select_for_update().filter(label_value=value).first()
    before = {"severity": mapping.severity_id} if mapping else None
    if mapping is None:
        mapping = AlertSeverityMapping.objects.create(label_value=value, severity=level)
    elif mapping.severity_id != level.level:
        mapping.severity = level
        mapping.save(update_fields=["severity"])
    audit.record(actor, "incident.alert_mapping_set", mapping, before=before, after={"severity": level.level})
    # What this replaced, for the confirmation message (None: a new mapping).
    mapping.previous_severity = before["severity"] if before else None
    return mapping


@transaction.atomic
def alert_mapping_delete(*, actor, mapping: AlertSeverityMapping) -> None:
    check_capability(actor, "schedule.edit")
    audit.record(
        actor,
        "incident.alert_mapping_delete",
        mapping,
        before={"label_value": mapping.label_value, "severity": mapping.severity_id},
    )
    mapping.delete()
