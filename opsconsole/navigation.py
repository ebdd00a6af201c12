"""The console's navigation, in the order the product brief gives."""

from dataclasses import dataclass

from django.http import HttpRequest
from django.urls import reverse


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    # The URL namespace (app) whose pages mark this item as current.
    section: str


NAV_ITEMS = [
    NavItem("Dashboard", "dashboard", "dashboard"),
    NavItem("Incidents", "incidents:list", "incidents"),
    NavItem("Checklists", "checklists:index", "checklists"),
    NavItem("Runbooks", "runbooks:index", "runbooks"),
    NavItem("Health", "healthchecks:board", "healthchecks"),
    NavItem("On-call", "oncall:index", "oncall"),
    NavItem("Reviews", "incidents:reviews", "reviews"),
]


def navigation(request: HttpRequest) -> list[dict]:
    match = getattr(request, "resolver_match", None)
    section = getattr(match, "namespace", "") or getattr(match, "url_name", "")
    current_view = getattr(match, "view_name", "")
    items = []
    for item in NAV_ITEMS:
        if item.section == "reviews":
            current = current_view.startswith("incidents:review")
        elif item.section == "incidents":
            current = section == "incidents" and not current_view.startswith("incidents:review")
        else:
            current = section == item.section
        items.append({"label": item.label, "url": reverse(item.url_name), "current": current})
    return items
