"""The console's navigation, in the order the product brief gives."""

from dataclasses import dataclass

from django.http import HttpRequest
from django.urls import reverse

from .roles import has_capability


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    # The URL namespace (app) whose pages mark this item as current.
    section: str
    # Shown only to people who may use the page.
    capability: str = "read"


NAV_ITEMS = [
    NavItem("Dashboard", "dashboard", "dashboard"),
    NavItem("Incidents", "incidents:list", "incidents"),
    NavItem("Checklists", "checklists:index", "checklists"),
    NavItem("Runbooks", "runbooks:index", "runbooks"),
    NavItem("Health", "healthchecks:board", "healthchecks"),
    NavItem("On-call", "oncall:index", "oncall"),
    NavItem("Reviews", "incidents:reviews", "reviews"),
    NavItem("Users", "users", "users", "users.manage"),
    NavItem("API tokens", "api_tokens", "api_tokens", "users.manage"),
]


def navigation(request: HttpRequest) -> list[dict]:
    match = getattr(request, "resolver_match", None)
    section = getattr(match, "namespace", "") or getattr(match, "url_name", "")
    current_view = getattr(match, "view_name", "")
    items = []
    for item in NAV_ITEMS:
        if item.capability != "read" and not has_capability(request.user, item.capability):
            continue
        if item.section == "reviews":
            current = current_view.startswith("incidents:review")
        elif item.section == "incidents":
            current = section == "incidents" and not current_view.startswith("incidents:review")
        elif item.section == "users":
            current = current_view in ("users", "user_detail")
        else:
            current = section == item.section
        items.append({"label": item.label, "url": reverse(item.url_name), "current": current})
    return items
