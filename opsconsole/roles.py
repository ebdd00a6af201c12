"""Roles and what each may do: the docs/roles.md matrix, enforced on the server.

Roles are Django groups (created by migration 0002). Views declare what they
need with @requires("capability"); services that need an object-level rule
(an SRE acknowledging an incident assigned to them) call has_capability and
add their own check.
"""

from collections.abc import Callable
from enum import StrEnum
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse


class Role(StrEnum):
    VIEWER = "Viewer"
    SRE = "SRE"
    INCIDENT_COMMANDER = "Incident Commander"
    MANAGER = "Manager"
    ADMIN = "Admin"


# Most senior first: the role shown beside a user's name.
ROLE_ORDER = [Role.ADMIN, Role.MANAGER, Role.INCIDENT_COMMANDER, Role.SRE, Role.VIEWER]

_RESPONDERS = frozenset({Role.SRE, Role.INCIDENT_COMMANDER, Role.MANAGER, Role.ADMIN})
_COMMANDERS = frozenset({Role.INCIDENT_COMMANDER, Role.MANAGER, Role.ADMIN})
_MANAGERS = frozenset({Role.MANAGER, Role.ADMIN})

CAPABILITIES: dict[str, frozenset[Role]] = {
    "read": frozenset(Role),
    "checklist.tick": _RESPONDERS,
    "incident.declare": _RESPONDERS,
    "incident.note": _RESPONDERS,
    # SREs may do this only on incidents they are assigned to: the incidents
    # service checks that; holding "incident.manage" means any incident.
    "incident.manage": _COMMANDERS,
    "incident.manage_assigned": _RESPONDERS,
    "incident.view_restricted": _MANAGERS,
    "review.write": _RESPONDERS,
    "review.approve": _MANAGERS,
    "runbook.run": _RESPONDERS,
    "remediation.request": _RESPONDERS,
    "remediation.approve": _RESPONDERS,
    # Bind a destructive action to run by itself when a check turns critical.
    "remediation.preapprove": _MANAGERS,
    "config.edit": _RESPONDERS,  # runbooks, checklist templates, checks
    "handoff.write": _RESPONDERS,  # write an on-call handoff, confirm or question one
    "schedule.edit": _MANAGERS,  # schedules, escalation policies, SEV table, alert mappings
    "users.manage": frozenset({Role.ADMIN}),
}


def user_roles(user) -> frozenset[Role]:
    """The user's roles, cached on the user object (one query per request)."""
    if not getattr(user, "is_authenticated", False):
        return frozenset()
    cached = getattr(user, "_opsconsole_roles", None)
    if cached is None:
        names = () if user.is_superuser else user.groups.values_list("name", flat=True)
        cached = roles_from_group_names(user, names)
        user._opsconsole_roles = cached
    return cached


def roles_from_group_names(user, names) -> frozenset[Role]:
    """The roles of a user whose group names are known (a superuser is an Admin)."""
    if user.is_superuser:
        return frozenset({Role.ADMIN})
    names = set(names)
    return frozenset(role for role in Role if role.value in names)


def primary_role(user) -> Role | None:
    roles = user_roles(user)
    return next((role for role in ROLE_ORDER if role in roles), None)


def has_capability(user, capability: str) -> bool:
    allowed = CAPABILITIES[capability]  # KeyError: a typo in a capability name
    return bool(user_roles(user) & allowed)


def check_capability(user, capability: str) -> None:
    """Raise PermissionDenied unless the user holds the capability (for services)."""
    if not has_capability(user, capability):
        raise PermissionDenied(f"Your role does not allow this ({capability}).")


def requires(capability: str) -> Callable:
    """View decorator: anonymous → sign-in page, lacking the capability → 403.

    The capability is kept on the view (`view.required_capability`) so that
    the permission-matrix test finds every protected URL.
    """
    CAPABILITIES[capability]  # fail at import time on a typo

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            check_capability(request.user, capability)
            return view(request, *args, **kwargs)

        wrapper.required_capability = capability
        return wrapper

    return decorator
