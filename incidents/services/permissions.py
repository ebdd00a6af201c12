"""Object-level permission rules for incidents (roles matrix: docs/roles.md)."""

from django.core.exceptions import PermissionDenied

from opsconsole.roles import has_capability

from ..models import Incident


def can_manage(user, incident: Incident) -> bool:
    """docs/roles.md: acknowledge, change SEV/status, assign roles — Commanders,
    Managers and Admins on any incident; SREs only on incidents they are assigned to."""
    if has_capability(user, "incident.manage"):
        return True
    return has_capability(user, "incident.manage_assigned") and incident.is_assigned(user)


def check_can_manage(user, incident: Incident) -> None:
    if not can_manage(user, incident):
        raise PermissionDenied(
            "Only the incident's commander, comms lead or responders (or an Incident "
            "Commander, Manager or Admin) may do this."
        )
