"""Unknown list filters are said to be ignored, and the valid ones still apply (issue 13)."""

import html

import pytest
from django.urls import reverse

from opsconsole.roles import Role

pytestmark = pytest.mark.django_db


def test_incident_list_names_the_ignored_filters(client_as):
    client = client_as(Role.VIEWER)
    response = client.get(reverse("incidents:list"), {"severity": "9", "status": "bogus", "q": "db"})
    body = html.unescape(response.content.decode())
    assert response.status_code == 200
    assert 'data-testid="ignored-filters"' in body
    assert "Ignored 2 unknown filters" in body and "“bogus”" in body and "“9”" in body
    clean = client.get(reverse("incidents:list"), {"status": "open"})
    assert 'data-testid="ignored-filters"' not in clean.content.decode()


def test_health_board_names_the_ignored_filters(client_as):
    client = client_as(Role.VIEWER)
    response = client.get(reverse("healthchecks:board"), {"state": "purple", "kind": "http"})
    body = html.unescape(response.content.decode())
    assert "Ignored 1 unknown filter: State: “purple”." in body
    assert 'data-testid="ignored-filters"' not in client.get(reverse("healthchecks:board")).content.decode()
