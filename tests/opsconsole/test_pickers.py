"""The searchable picker for people and services (issue 13): limited results, active
people only, constant queries, and forms that post plain values."""

import re

import pytest
from django.urls import reverse

from incidents import services as incident_services
from incidents.forms import RolesForm
from opsconsole.models import Service
from opsconsole.pickers import PICKER_LIMIT
from opsconsole.roles import Role

pytestmark = pytest.mark.django_db


def _values(body):
    return re.findall(r'value="(\d+)"', body)


def test_people_search_is_limited_active_only_and_constant(client_as, make_user, django_assert_max_num_queries):
    client = client_as(Role.VIEWER)
    for i in range(PICKER_LIMIT + 5):
        make_user(Role.SRE, username=f"oncall{i:03d}")
    gone = make_user(Role.SRE, username="oncall-gone", is_active=False)
    url = reverse("picker", args=["people"])
    with django_assert_max_num_queries(4):
        body = client.get(url, {"q": "oncall", "field": "commander"}).content.decode()
    assert len(_values(body)) == PICKER_LIMIT and "type more to narrow" in body
    assert str(gone.pk) not in _values(body) and 'type="radio" name="commander"' in body
    body = client.get(url, {"commander__search": "oncall007", "field": "responders", "multiple": "1"}).content.decode()
    assert body.count('type="checkbox" name="responders"') == 1 and "oncall007" in body
    assert "Nothing matches" in client.get(url, {"q": "zzz", "field": "x"}).content.decode()
    assert client.get(url, {"q": "a", "field": "<script>"}).status_code == 400
    assert client.get(reverse("picker", args=["secrets"]), {"field": "x"}).status_code == 404


def test_responders_source_leaves_out_viewers(client_as, make_user):
    client = client_as(Role.VIEWER)
    viewer, sre = make_user(Role.VIEWER, username="vic"), make_user(Role.SRE, username="victor")
    body = client.get(reverse("picker", args=["responders"]), {"q": "vic", "field": "commander"}).content.decode()
    assert _values(body) == [str(sre.pk)] and str(viewer.pk) not in _values(body)


def test_services_search(client_as):
    client = client_as(Role.VIEWER)
    Service.objects.create(slug="payments", name="Payments API")
    Service.objects.create(slug="search", name="Search")
    body = client.get(reverse("picker", args=["services"]), {"q": "pay", "field": "services", "multiple": "1"})
    assert "Payments API" in body.content.decode() and "Search" not in body.content.decode()


def test_roles_form_renders_pickers_not_long_selects(client_as, make_user, django_assert_max_num_queries):
    client = client_as(Role.INCIDENT_COMMANDER)
    people = [make_user(Role.SRE, username=f"sre{i:03d}") for i in range(60)]
    incident = incident_services.incident_declare(actor=client.user, title="Queue", severity=3, commander=client.user)
    url = reverse("incidents:roles", args=[incident.reference])
    body = client.get(url).content.decode()
    assert "<select" not in body.split('class="form', 1)[-1] and body.count('class="picker"') == 3
    # The chosen commander is shown ticked; nobody else is listed until searched for.
    assert f'name="commander" value="{client.user.pk}" checked' in body and "sre059" not in body
    response = client.post(
        url, {"commander": people[5].pk, "comms_lead": "", "responders": [people[1].pk, people[2].pk]}
    )
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.commander_id == people[5].pk and incident.comms_lead_id is None
    assert set(incident.responders.values_list("pk", flat=True)) == {people[1].pk, people[2].pk}


def test_a_value_outside_the_source_is_refused():
    form = RolesForm({"commander": "999999", "responders": ["abc"]})
    assert not form.is_valid() and {"commander", "responders"} <= set(form.errors)


@pytest.mark.parametrize("value", ["²", "٣", "9" * 30, "-1", " 7"])
def test_a_picker_given_a_value_that_is_no_id_renders_with_nothing_chosen(value):
    from opsconsole.badinput import as_pk
    from opsconsole.pickers import Picker

    # "²" and "٣" pass str.isdigit() but not int(); 30 digits overflow a bigint.
    assert as_pk(value) is None
    html = Picker("people").render("person", value)
    assert 'name="person"' in html


def test_as_pk_reads_ascii_ids_that_fit_a_bigint():
    from opsconsole.badinput import as_pk

    assert [as_pk(v) for v in ("7", 7, "000123", "9" * 18, None, "")] == [7, 7, 123, int("9" * 18), None, None]
