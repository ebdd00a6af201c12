"""The bad inputs found when the console was attacked (issue #8, "Bad input never
reaches a 500"): each answered 500 (or did the wrong thing) before the fix.
The property-based tests in tests/test_fuzz_endpoints.py cover the classes."""

import json

import pytest
from django.test import override_settings
from django.urls import reverse

from checklists.models import ChecklistRun
from healthchecks.models import Check
from incidents import services
from incidents.models import AlertReceipt, Incident, TimelineEvent
from opsconsole.models import ApiToken, AuditEntry, Service
from opsconsole.roles import Role
from tests.healthchecks.factories import make_service
from tests.incidents.permission_cases import alertmanager_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client, make_user):
    """api(path, body) → the response of POSTing `body` (JSON unless bytes/str) with an SRE's token."""
    raw, prefix, token_hash = ApiToken.generate()
    ApiToken.objects.create(user=make_user(Role.SRE), name="bad-input", prefix=prefix, token_hash=token_hash)

    def post(path: str, body, method: str = "post"):
        headers = {"Authorization": f"Bearer {raw}"}
        if method == "get":
            return client.get(path, headers=headers)
        data = body if isinstance(body, bytes | str) else json.dumps(body)
        return client.post(path, data, content_type="application/json", headers=headers)

    return post


def _writes() -> tuple[int, int, int]:
    return Incident.objects.count(), TimelineEvent.objects.count(), AuditEntry.objects.count()


def test_htmx_note_with_a_bad_cursor_is_refused_before_the_note_is_saved(client_as):
    client = client_as(Role.SRE)
    incident = services.incident_declare(actor=None, title="Queue backlog", severity=2)
    before = _writes()
    response = client.post(
        reverse("incidents:note", args=[incident.reference]),
        {"text": "Restarted the consumer", "after": "abc"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 400
    assert "after" in response.content.decode()
    assert _writes() == before  # a retry cannot duplicate the note


def test_htmx_note_with_a_good_cursor_still_answers_the_new_events(client_as):
    client = client_as(Role.SRE)
    incident = services.incident_declare(actor=None, title="Queue backlog", severity=2)
    cursor = incident.events.get().pk
    response = client.post(
        reverse("incidents:note", args=[incident.reference]),
        {"text": "Restarted the consumer", "after": str(cursor)},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200 and "Restarted the consumer" in response.content.decode()


def test_checklist_poll_with_a_since_past_year_9999_in_utc(client_as):
    from checklists import services as checklist_services
    from checklists.models import ChecklistTemplate, TemplateItem

    client = client_as(Role.SRE)
    template = ChecklistTemplate.objects.create(name="Morning")
    TemplateItem.objects.create(template=template, order=0, text="Look at the board", required=True)
    run = checklist_services.run_start(actor=client.user, template=template)
    url = reverse("checklists:run_poll", args=[run.pk])
    response = client.get(url, {"since": "9999-12-31T23:59:59-23:59"})
    assert response.status_code in (200, 204)
    assert ChecklistRun.objects.filter(pk=run.pk).exists()


@pytest.mark.parametrize("url", ["http://[::1", "http://[::1]:99999/", "https://host:0x50/"])
def test_check_url_that_urlsplit_cannot_parse_is_a_field_error(client_as, url):
    client = client_as(Role.SRE)
    data = {
        "name": "api",
        "service": make_service().pk,
        "kind": "http",
        "url": url,
        "interval_seconds": 60,
        "timeout_seconds": 5,
        "consecutive_needed": 2,
    }
    response = client.post(reverse("healthchecks:create"), data)
    assert response.status_code == 200
    assert "url" in response.context["form"].errors
    assert not Check.objects.exists()


def test_deeply_nested_json_is_a_400_naming_the_depth(api):
    body = '{"title": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = api("/api/incidents", body)
    assert response.status_code == 400 and "deeper" in response.json()["error"]
    moderately = {"title": "x", "severity": 2, "summary": json.loads("[" * 40 + "]" * 40)}
    response = api("/api/incidents", moderately)
    assert response.status_code == 400 and "summary" in response.json()["error"]
    assert not Incident.objects.exists()


@pytest.mark.parametrize("services_value", [5, "²", {"a": 1}, [["x"]], [True]])
def test_api_services_of_the_wrong_type_is_a_400_naming_services(api, services_value):
    response = api("/api/incidents", {"title": "Checkout down", "severity": 2, "services": services_value})
    assert response.status_code == 400, response.content
    assert "services" in response.json()["error"] and "services" in response.json()["fields"]
    assert not Incident.objects.exists()


def test_api_services_as_digits_that_are_not_decimal(api):
    response = api("/api/incidents", {"title": "Checkout down", "severity": 2, "services": ["²"]})
    assert response.status_code == 400 and "services" in response.json()["error"]
    response = api("/api/incidents", {"title": "Checkout down", "severity": "²"})
    assert response.status_code == 400 and "severity" in response.json()["error"]
    assert not Incident.objects.exists()


@pytest.mark.parametrize(
    "body, field",
    [
        ({"title": "Checkout\x00 down", "severity": 2}, "title"),
        ({"title": "Checkout down", "severity": 2, "summary": "a\x00b"}, "summary"),
        ({"title": "Checkout down", "severity": 2, "services": ["api\x00"]}, "services[0]"),
        ({"title": "Checkout down", "severity": 2, "na\x00me": 1}, "na\\0me"),
        ({"title": "Checkout \ud800 down", "severity": 2}, "title"),
    ],
)
def test_nul_and_lone_surrogates_in_api_strings_are_a_400_naming_the_field(api, body, field):
    response = api("/api/incidents", body)
    assert response.status_code == 400
    assert response.json()["field"] == field and field in response.json()["error"]
    assert not Incident.objects.exists()


def test_nul_in_an_alertmanager_string_is_a_400_naming_the_field(api):
    body = alertmanager_payload()
    body["alerts"][0]["labels"]["instance"] = "worker\x001"
    response = api("/api/alerts/alertmanager", body)
    assert response.status_code == 400
    assert response.json()["field"] == "alerts[0].labels.instance"
    assert not AlertReceipt.objects.exists() and not Incident.objects.exists()


def test_nul_in_a_page_form_is_a_400_naming_the_field_on_the_console_page(client_as):
    client = client_as(Role.SRE)
    before = _writes()
    response = client.post(reverse("incidents:declare"), {"title": "Checkout\x00", "severity": 2})
    assert response.status_code == 400
    assert "title" in response.content.decode() and "Ops Console" in response.content.decode()
    response = client.get(reverse("incidents:list"), {"q": "\x00"})
    assert response.status_code == 400 and "q" in response.content.decode()
    assert _writes() == before


def test_nul_in_an_api_path_is_a_json_400(api):
    response = api("/api/incidents/INC%00/notes", {"text": "x"})
    assert response.status_code == 400 and response.json()["field"] == "path"


def test_a_webhook_over_13000_alerts_is_taken_in_chunks(api, django_assert_max_num_queries):
    """Before: one query per alert (its severity mapping) — 13,000 queries, past
    gunicorn's worker timeout — and one INSERT whose parameters grow with the alerts."""
    alerts = [
        {
            "status": "firing",
            "labels": {"alertname": "DiskFull", "instance": f"node-{i}"},
            "annotations": {},
            "startsAt": "2026-11-23T10:00:00Z",
            "fingerprint": f"{i:016x}",
        }
        for i in range(13_200)
    ]
    body = alertmanager_payload(alerts=alerts)
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=10 * 1024 * 1024), django_assert_max_num_queries(150):
        response = api("/api/alerts/alertmanager", body)
    assert response.status_code == 200, response.content[:300]
    assert response.json()["new_alerts"] == 13_200
    assert AlertReceipt.objects.count() == 13_200
    assert AlertReceipt.objects.filter(incident__isnull=True).count() == 0


@pytest.mark.parametrize("value", ["false", "true", 0, 1, "no", []])
def test_api_restricted_must_be_a_json_boolean(api, value):
    response = api("/api/incidents", {"title": "Breach?", "severity": 1, "restricted": value})
    assert response.status_code == 400 and "restricted" in response.json()["error"]
    assert not Incident.objects.exists()


def test_api_restricted_false_is_not_restricted(api):
    response = api("/api/incidents", {"title": "Checkout down", "severity": 2, "restricted": False})
    assert response.status_code == 201
    assert Incident.objects.get().restricted is False
    api("/api/incidents", {"title": "Breach", "severity": 1, "restricted": True})
    assert Incident.objects.get(title="Breach").restricted is True


def test_a_3_mb_body_is_a_413_in_json(api):
    body = json.dumps({"title": "x" * (3 * 1024 * 1024), "severity": 2})
    response = api("/api/incidents", body)
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json" and "larger than" in response.json()["error"]
    response = api("/api/alerts/alertmanager", body)
    assert response.status_code == 413 and "larger than" in response.json()["error"]
    assert not Incident.objects.exists()


def test_a_3_mb_form_is_a_413_on_the_console_page(client_as):
    client = client_as(Role.SRE)
    response = client.post(reverse("incidents:declare"), {"title": "x" * (3 * 1024 * 1024), "severity": 2})
    assert response.status_code == 413 and "Too large" in response.content.decode()
    assert not Incident.objects.exists()


def test_api_errors_are_json_whatever_raises_them(api, client):
    response = api("/api/incidents", {}, method="get")  # POST only
    assert response.status_code == 405 and response.json()["error"].startswith("method not allowed")
    assert "POST" in response["Allow"]
    response = client.get("/api/nothing-here")
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    response = client.get("/nothing-here")
    assert response.status_code == 404 and "Not found" in response.content.decode()


def test_api_declare_validates_with_the_page_form(api, make_user):
    Service.objects.create(name="Payments", slug="payments")
    commander = make_user(Role.INCIDENT_COMMANDER, username="ic1")
    response = api(
        "/api/incidents",
        {"title": "Payments failing", "severity": 2, "services": ["payments"], "commander": "ic1", "summary": "s"},
    )
    assert response.status_code == 201, response.content
    incident = Incident.objects.get()
    assert incident.commander == commander and list(incident.services.values_list("slug", flat=True)) == ["payments"]
    # The page form's limit (title: 200 characters) is the API's too.
    response = api("/api/incidents", {"title": "x" * 201, "severity": 2})
    assert response.status_code == 400 and "title" in response.json()["fields"]
    response = api("/api/incidents", {"title": "x", "severity": 2, "colour": "red"})
    assert response.status_code == 400 and "colour" in response.json()["fields"]
    response = api("/api/incidents", {"title": "x", "severity": 2, "commander": "nobody"})
    assert response.status_code == 400 and "commander" in response.json()["fields"]
    response = api("/api/incidents", {"title": "x", "severity": 2, "services": ["unknown-service"]})
    assert response.status_code == 400 and "services" in response.json()["fields"]
    assert Incident.objects.count() == 1


@pytest.mark.parametrize(
    "occurred_at", ["2026-01-15T10:30:00", "yesterday", "9999-12-31T23:59:59-23:59", 5, "0001-01-01T00:00:00+23:59"]
)
def test_api_note_occurred_at_is_validated_before_anything_is_written(api, occurred_at):
    incident = services.incident_declare(actor=None, title="API note", severity=3)
    before = _writes()
    response = api(f"/api/incidents/{incident.reference}/notes", {"text": "x", "occurred_at": occurred_at})
    assert response.status_code == 400 and "occurred_at" in response.json()["error"]
    assert _writes() == before


def test_page_note_with_a_date_past_year_9999_in_utc_is_a_field_error(client_as):
    client = client_as(Role.SRE)
    incident = services.incident_declare(actor=None, title="Page note", severity=3)
    before = _writes()
    response = client.post(
        reverse("incidents:note", args=[incident.reference]),
        {"text": "x", "occurred_at": "9999-12-31T23:59:59-23:59"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200 and "occurred_at" in response.context["note_form"].errors
    assert _writes() == before


def test_a_page_answers_a_wrong_method_with_the_console_page(client_as):
    client = client_as(Role.SRE)
    response = client.get(reverse("incidents:alert_mapping_set"))
    assert response.status_code == 405 and "POST" in response["Allow"]
    assert "Not here" in response.content.decode()


def test_a_server_error_on_the_api_is_json_and_on_a_page_the_console_page(rf):
    from opsconsole.badinput import server_error

    response = server_error(rf.post("/api/incidents"))
    assert response.status_code == 500 and json.loads(response.content)["error"].startswith("server error")
    response = server_error(rf.get("/incidents/"))
    assert response.status_code == 500 and "Something went wrong on our side" in response.content.decode()
