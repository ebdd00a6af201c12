"""Changing what an open incident says: its SEV, its people, its details."""

from collections.abc import Iterable

from django.db import transaction

from opsconsole import audit

from ..models import EventKind, Incident
from .announce import _announce
from .common import _resolve_services, _snapshot
from .permissions import check_can_manage
from .severity import severity_level
from .timeline import timeline_add_event


@transaction.atomic
def incident_set_severity(*, incident: Incident, actor, severity: int, reason: str = "") -> Incident:
    """Change the SEV; the deadlines follow the new level's targets."""
    check_can_manage(actor, incident)
    level = severity_level(severity)
    current = Incident.objects.select_for_update().select_related("severity").get(pk=incident.pk)
    if current.severity_id == level.level:
        return current
    before = _snapshot(current)
    old = current.severity
    current.severity = level
    current.ack_due_at, current.resolve_due_at = current.compute_due(level)
    current.save(update_fields=["severity", "ack_due_at", "resolve_due_at", "updated_at"])
    text = f"SEV: {old.name} → **{level.name}**" + (f" — {reason}" if reason else "")
    timeline_add_event(
        incident=current,
        kind=EventKind.SEVERITY,
        text=text,
        actor=actor,
        data={"from": old.level, "to": level.level},
    )
    audit.record(actor, "incident.severity", current, before=before, after=_snapshot(current))
    _announce(
        "incident.severity_changed",
        current,
        f"{current.reference} is now {level.name}: {current.title}",
        f"SEV {old.name} → {level.name} by {actor}" + (f": {reason}" if reason else "."),
    )
    return current


@transaction.atomic
def incident_set_roles(*, incident: Incident, actor, commander=None, comms_lead=None, responders=()) -> Incident:
    """Assign commander, communications lead and responders; one event per change."""
    check_can_manage(actor, incident)
    current = Incident.objects.select_for_update().get(pk=incident.pk)
    before = {
        **_snapshot(current),
        "responders": sorted(current.responders.values_list("pk", flat=True)),
    }
    changes = []
    for field, label, user in (
        ("commander", "Commander", commander),
        ("comms_lead", "Comms lead", comms_lead),
    ):
        if getattr(current, f"{field}_id") != (user.pk if user else None):
            setattr(current, field, user)
            changes.append(f"{label}: **{user or 'nobody'}**")
    current.save(update_fields=["commander", "comms_lead", "updated_at"])
    old_ids = set(before["responders"])
    new = list(responders)
    if {u.pk for u in new} != old_ids:
        current.responders.set(new)
        changes.append("Responders: " + (", ".join(str(u) for u in new) or "nobody"))
    if changes:
        timeline_add_event(
            incident=current,
            kind=EventKind.ROLE,
            text="\n".join(f"- {c}" for c in changes),
            actor=actor,
            data={
                "commander": current.commander_id,
                "comms_lead": current.comms_lead_id,
                "responders": sorted(u.pk for u in new),
            },
        )
        after = {**_snapshot(current), "responders": sorted(u.pk for u in new)}
        audit.record(actor, "incident.roles", current, before=before, after=after)
    return current


@transaction.atomic
def incident_update_details(
    *,
    incident: Incident,
    actor,
    title: str,
    summary: str,
    customer_impact: str,
    services: Iterable = (),
    tags: Iterable[str] = (),
    restricted: bool = False,
) -> Incident:
    """Edit what is known about the incident; records which fields changed."""
    check_can_manage(actor, incident)
    current = Incident.objects.select_for_update().get(pk=incident.pk)
    before = {
        **_snapshot(current),
        "services": sorted(current.services.values_list("slug", flat=True)),
    }
    found, _ = _resolve_services(services)
    current.title = (title or current.title).strip()[:200]
    current.summary, current.customer_impact, current.restricted = (
        summary,
        customer_impact,
        restricted,
    )
    current.tags = sorted({t.strip() for t in tags if t and t.strip()})
    current.save(update_fields=["title", "summary", "customer_impact", "restricted", "tags", "updated_at"])
    current.services.set(found)
    after = {**_snapshot(current), "services": sorted(s.slug for s in found)}
    changed = [k for k in after if before.get(k) != after[k]]
    if changed:
        text = "Updated " + ", ".join(k.replace("_", " ") for k in changed)
        if "customer_impact" in changed and customer_impact:
            text += f"\n\n**Customer impact:** {customer_impact}"
        timeline_add_event(
            incident=current,
            kind=EventKind.UPDATE,
            text=text,
            actor=actor,
            data={"changed": changed},
        )
        audit.record(actor, "incident.update", current, before=before, after=after)
    return current
