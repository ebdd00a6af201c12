"""The dashboard is a column of panels; each app registers its own in
AppConfig.ready(), so that adding a capability never edits the dashboard."""

from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpRequest

from .models import Service


@dataclass(frozen=True)
class Panel:
    name: str
    template: str
    context: Callable[[HttpRequest], dict]
    order: int = 50


_panels: dict[str, Panel] = {}


def register_panel(*, name: str, template: str, context: Callable[[HttpRequest], dict], order: int = 50) -> None:
    _panels[name] = Panel(name=name, template=template, context=context, order=order)


def panels() -> list[Panel]:
    return sorted(_panels.values(), key=lambda panel: (panel.order, panel.name))


def render_panels(request: HttpRequest) -> list[tuple[Panel, dict]]:
    return [(panel, panel.context(request)) for panel in panels()]


def services_panel_context(request: HttpRequest) -> dict:
    return {"services": list(Service.objects.all()[:50])}
