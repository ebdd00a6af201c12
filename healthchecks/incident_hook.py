"""The link to the incidents app: a check's state change opens, updates or
resolves the incident with dedup key `check:<id>`.

healthchecks sits above incidents in the app graph (docs/architecture.md), so
it calls incidents.services.open_or_update_from_source directly.
"""

from __future__ import annotations

from incidents.services import open_or_update_from_source

from .models import Check, CheckStateChange

# Critical checks open SEV-2 incidents, warnings SEV-3: a failing check is a
# degradation until a person says it is an outage.
SEVERITY = {Check.State.CRITICAL: 2, Check.State.WARNING: 3}


def open_or_update_incident(change_id: int) -> bool:
    """Idempotent: the incidents service de-duplicates on the key."""
    change = CheckStateChange.objects.select_related("check_ref__service").filter(pk=change_id).first()
    if change is None or change.silenced or not change.check_ref.opens_incident:
        return False
    if change.to_state == Check.State.UNKNOWN:
        return False  # no data is not an outage: wait for a real result
    check = change.check_ref
    resolved = change.to_state == Check.State.OK
    open_or_update_from_source(
        dedup_key=f"check:{check.pk}",
        title=f"Check failing: {check.service.name} / {check.name}",
        severity=SEVERITY.get(change.to_state, 3),
        services=(check.service,),
        # The summary, not the detailed message: incidents, their timelines and
        # their notifications reach people without config.edit.
        text=f"{check.name}: {change.from_state} → {change.to_state}. {change.summary}",
        resolved=resolved,
        data={
            "check_id": check.pk,
            "from": change.from_state,
            "to": change.to_state,
            "summary": change.summary,
        },
        source_kind="check",
    )
    return True
