"""Upward hooks of healthchecks. Apps above it (runbooks) register here in
their AppConfig.ready(); healthchecks never imports them.

- state-change listeners: called inside the transaction that records state
  changes, with the changes that are not silenced by maintenance. A listener
  must only read and schedule work (transaction.on_commit), never call out.
- check-page panels: extra sections of a check's page, each a template and a
  context function (request, check) -> dict.
- board row actions: a link offered on the status board's row of each failing
  (warning or critical) check to the roles holding a capability, e.g. runbooks'
  "Start runbook". The link is a template resolved once per page (no query per row).
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


@dataclass(frozen=True)
class BoardRowAction:
    name: str
    label: str
    capability: str
    # Returns the link with "{check_id}" where the check's id goes; called once per page.
    href_template: Callable[[], str]


_row_actions: dict[str, BoardRowAction] = {}


def register_board_row_action(*, name: str, label: str, capability: str, href_template: Callable[[], str]) -> None:
    _row_actions[name] = BoardRowAction(name=name, label=label, capability=capability, href_template=href_template)


def board_row_actions(user) -> list[tuple[str, str]]:
    """(label, href template) of the row actions this user may take, by name."""
    from opsconsole.roles import has_capability

    return [
        (action.label, action.href_template())
        for name, action in sorted(_row_actions.items())
        if has_capability(user, action.capability)
    ]
