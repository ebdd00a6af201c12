"""Refused notes and N/A reasons: the error is shown next to the form, with the limit
it broke, and the text that was typed is still in the form (issue 13)."""

import html

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from checklists import services
from checklists.models import RunItem
from opsconsole.roles import Role

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


@pytest.fixture
def run(make_template, make_user):
    return services.run_start(actor=make_user(Role.SRE), template=make_template(2))


def _item(run):
    return run.items.order_by("order").first()


def test_too_long_na_reason_states_the_limit_and_keeps_the_text(client_as, run):
    client = client_as(Role.SRE)
    item = _item(run)
    reason = "because " + "r" * 392  # 400 characters
    response = client.post(reverse("checklists:item_na", args=[run.pk, item.pk]), {"reason": reason}, headers=HTMX)
    body = html.unescape(response.content.decode())
    assert response.status_code == 200
    assert "The reason is limited to 300 characters (this one has 400)." in body
    assert f'value="{reason}"' in body  # the typed reason, still in the input
    assert "Say why" not in body  # not the message for an empty reason
    assert not list(get_messages(response.wsgi_request))  # nothing left for a later page
    assert RunItem.objects.get(pk=item.pk).state == RunItem.State.OPEN


def test_too_long_note_states_the_limit_and_keeps_the_text(client_as, run):
    client = client_as(Role.SRE)
    item = _item(run)
    note = "n" * 6000
    url = reverse("checklists:item_note", args=[run.pk, item.pk])
    for headers in (HTMX, {}):
        response = client.post(
            url, {"note": note, "evidence": "grafana link", "version": item.version}, headers=headers
        )
        body = html.unescape(response.content.decode())
        assert response.status_code == (200 if headers else 400)
        assert "The note is limited to 5000 characters (this one has 6000)." in body
        assert f">{note}</textarea>" in body and 'value="grafana link"' in body
        assert not list(get_messages(response.wsgi_request))
    assert RunItem.objects.get(pk=item.pk).note == ""


def test_plain_post_na_error_renders_the_page_with_the_text(client_as, run):
    client = client_as(Role.SRE)
    item = _item(run)
    response = client.post(reverse("checklists:item_na", args=[run.pk, item.pk]), {"reason": "x" * 301})
    body = html.unescape(response.content.decode())
    assert response.status_code == 400
    assert "limited to 300 characters (this one has 301)" in body and 'value="' + "x" * 301 + '"' in body
    # Only the refused item's form is open and filled.
    assert body.count('data-testid="na-error"') == 1


def test_empty_na_reason_asks_for_one(client_as, run):
    client = client_as(Role.SRE)
    item = _item(run)
    response = client.post(reverse("checklists:item_na", args=[run.pk, item.pk]), {"reason": "  "}, headers=HTMX)
    assert "Say why this item does not apply." in response.content.decode()
