"""Upward hooks of healthchecks. Apps above it (runbooks) register here in
their AppConfig.ready(); healthchecks never imports them.

- state-change listeners: called inside the transaction that records state
  changes, with the changes that are not silenced by maintenance. A listener
  must only read and schedule work (transaction.on_commit), never call out.
- check-page panels: extra sections of a check's page, each a template and a
  context function (request, check) -> dict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpRequest

_listeners: dict[str, Callable[[list], None]] = {}


def register_state_change_listener(name: str, listener: Callable[[list], None]) -> None:
    _listeners[name] = listener  # by name: a second ready() replaces, never doubles


def state_changed(changes: list) -> None:
    for listener in _listeners.values():
        listener(changes)


@dataclass(frozen=True)
class CheckPanel:
    name: str
    template: str
    context: Callable[[HttpRequest, object], dict]
    order: int = 50


_panels: dict[str, CheckPanel] = {}


def register_check_panel(*, name: str, template: str, context: Callable[[HttpRequest, object], dict], order=50):
    _panels[name] = CheckPanel(name=name, template=template, context=context, order=order)


def render_check_panels(request: HttpRequest, check) -> list[tuple[CheckPanel, dict]]:
    panels = sorted(_panels.values(), key=lambda panel: (panel.order, panel.name))
    return [(panel, panel.context(request, check)) for panel in panels]
