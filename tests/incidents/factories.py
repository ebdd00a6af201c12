"""Test helpers for incidents: build incidents through the real services."""

from incidents import services
from opsconsole.roles import Role


def declare(actor, title: str = "Checkout errors", severity: int = 2, **kw):
    return services.incident_declare(actor=actor, title=title, severity=severity, **kw)


def assigned_incident(user, make_user=None, **kw):
    """An incident declared by an Admin-like system actor with `user` as commander."""
    return services.incident_declare(
        actor=None,
        title=kw.pop("title", "Queue backlog"),
        severity=kw.pop("severity", 2),
        commander=user,
        **kw,
    )


ROLES_WITH_MANAGE = (Role.INCIDENT_COMMANDER, Role.MANAGER, Role.ADMIN)
