"""Reordering steps in the editor: up/down buttons (plain submit buttons, so
keyboard and screen-reader users get them for free) swap two steps without
saving and keep unsaved edits; Save writes the new order as a new version."""

import re

import pytest
from django.urls import reverse

from opsconsole.audit import AuditEntry
from opsconsole.roles import Role
from tests.runbooks.factories import make_runbook, start

pytestmark = pytest.mark.django_db


def _form(runbook, titles: list[str]) -> dict:
    data = {
        "title": runbook.title,
        "symptoms": runbook.symptoms,
        "tags": "",
        "change_note": "reorder",
        "base_version": runbook.current_version.number,
        "steps-TOTAL_FORMS": len(titles),
        "steps-INITIAL_FORMS": len(titles),
        "steps-MIN_NUM_FORMS": 0,
        "steps-MAX_NUM_FORMS": 1000,
    }
    for i, title in enumerate(titles):
        data |= {f"steps-{i}-title": title, f"steps-{i}-instructions": f"about {title}", f"steps-{i}-command": ""}
    return data


def _titles(body: str) -> list[str]:
    return re.findall(r'name="steps-\d+-title"[^>]*value="([^"]*)"', body) or re.findall(
        r'value="([^"]*)"[^>]*name="steps-\d+-title"', body
    )


def test_move_buttons_reorder_without_saving_and_save_writes_a_version(client_as):
    runbook = make_runbook("Queue backlog", steps=3)
    pinned = start(runbook)
    client = client_as(Role.SRE)
    url = reverse("runbooks:edit", args=[runbook.pk])
    page = client.get(url).content.decode()
    # 3 steps + 2 empty ones: every form but the first can move up, every one but the last down.
    assert page.count('data-testid="move-up"') == 4 and page.count('data-testid="move-down"') == 4
    # The hidden default button comes first: Enter in a field saves, never moves.
    assert page.index('type="submit" class="visually-hidden"') < page.index('name="move"')

    edited = _form(runbook, ["Step 1", "Step 2 (edited, unsaved)", "Step 3"])
    moved = client.post(url, edited | {"move": "1-up"})
    body = moved.content.decode()
    assert moved.status_code == 200 and 'data-testid="moved"' in body
    assert _titles(body)[:3] == ["Step 2 (edited, unsaved)", "Step 1", "Step 3"]
    assert 'value="0-up"' not in body and re.search(r'value="0-down"[^>]*autofocus', body)  # focus follows the step
    runbook.refresh_from_db()
    assert runbook.current_version.number == 1  # moving saved nothing

    again = client.post(url, _form(runbook, _titles(body)[:3]) | {"move": "1-down"})
    assert _titles(again.content.decode())[:3] == ["Step 2 (edited, unsaved)", "Step 3", "Step 1"]

    saved = client.post(url, _form(runbook, ["Step 2 (edited, unsaved)", "Step 3", "Step 1"]))
    assert saved.status_code == 302
    runbook.refresh_from_db()
    version = runbook.current_version
    assert version.number == 2
    assert list(version.steps.order_by("order").values_list("title", flat=True)) == [
        "Step 2 (edited, unsaved)",
        "Step 3",
        "Step 1",
    ]
    assert AuditEntry.objects.filter(action="runbooks.version_create").count() == 2
    assert [s.step.title for s in pinned.step_runs.select_related("step").order_by("order")] == [
        "Step 1",
        "Step 2",
        "Step 3",
    ]  # the earlier execution keeps its version


@pytest.mark.parametrize("move", ["0-up", "2-down", "x-up", "1-sideways", "99-down", "-1-up"])
def test_a_move_off_the_ends_or_malformed_changes_nothing(client_as, move):
    runbook = make_runbook("Edges", steps=3)
    client = client_as(Role.SRE)
    response = client.post(
        reverse("runbooks:edit", args=[runbook.pk]), _form(runbook, ["A", "B", "C"]) | {"move": move}
    )
    assert response.status_code == 200
    assert _titles(response.content.decode())[:3] == ["A", "B", "C"]
    runbook.refresh_from_db()
    assert runbook.current_version.number == 1


def test_a_viewer_cannot_move_steps(client_as):
    runbook = make_runbook("Locked", steps=2)
    response = client_as(Role.VIEWER).post(
        reverse("runbooks:edit", args=[runbook.pk]), _form(runbook, ["A", "B"]) | {"move": "1-up"}
    )
    assert response.status_code == 403
