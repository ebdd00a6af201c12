"""Panels that higher apps add to the incident page's side column.

incidents never imports the apps above it: runbooks (suggested runbooks,
executions) registers a panel in its AppConfig.ready(), and the incident
page renders whatever is registered. Each context function receives the
request and the incident the viewer may already see.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpRequest


@dataclass(frozen=True)
class IncidentPanel:
    name: str
    template: str
    context: Callable[[HttpRequest, object], dict]
    order: int = 50


_panels: dict[str, IncidentPanel] = {}


def register_panel(*, name: str, template: str, context: Callable[[HttpRequest, object], dict], order: int = 50):
    _panels[name] = IncidentPanel(name=name, template=template, context=context, order=order)


def render_panels(request: HttpRequest, incident) -> list[tuple[IncidentPanel, dict]]:
    panels = sorted(_panels.values(), key=lambda panel: (panel.order, panel.name))
    return [(panel, panel.context(request, incident)) for panel in panels]
