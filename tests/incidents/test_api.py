import pytest
from django.urls import reverse

from incidents import alerts, services
from incidents.models import AlertReceipt, AlertSeverityMapping, Incident, Status, TimelineEvent
from opsconsole.models import ApiToken, AuditEntry, Service
from opsconsole.roles import Role

from .permission_cases import alertmanager_payload

pytestmark = pytest.mark.django_db
URL = "/api/alerts/alertmanager"


@pytest.fixture
def token(make_user):
    def make(role=Role.SRE):
        raw, prefix, token_hash = ApiToken.generate()
        ApiToken.objects.create(user=make_user(role), name="am", prefix=prefix, token_hash=token_hash)
        return raw

    return make


def _post(client, body, raw, url=URL):
    return client.post(url, body, content_type="application/json", headers={"Authorization": f"Bearer {raw}"})


def test_url_is_the_documented_one():
    assert reverse("incidents_api:alertmanager") == URL


def test_first_firing_opens_then_updates_then_resolves(client, token):
    raw = token()
    Service.objects.create(name="Message queue", slug="message-queue")
    response = _post(client, alertmanager_payload(), raw)
    assert response.status_code == 200, response.content
    incident = Incident.objects.get()
    assert response.json() == {"incident": incident.reference, "new_alerts": 1, "duplicates": 0}
    assert incident.severity_id == 3  # "medium" → SEV-3 (default mapping)
    assert list(incident.services.values_list("slug", flat=True)) == ["message-queue"]
    assert incident.title == "Job queue size > 1000" and incident.source_kind == "alert"

    second = alertmanager_payload(
        alerts=[
            {**alertmanager_payload()["alerts"][0]},
            {
                "status": "firing",
                "labels": {
                    "alertname": "JobQueueBacklog",
                    "severity": "critical",
                    "instance": "worker-2",
                },
                "annotations": {"summary": "Job queue size > 1000"},
                "startsAt": "2026-11-23T10:05:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": "ffff000011112222",
            },
        ]
    )
    assert _post(client, second, raw).json()["new_alerts"] == 1  # the first alert is not counted again
    assert Incident.objects.count() == 1

    resolved = alertmanager_payload(status="resolved")
    assert _post(client, resolved, raw).json() == {
        "incident": incident.reference,
        "new_alerts": 1,
        "duplicates": 0,
    }
    events = list(TimelineEvent.objects.filter(incident=incident, kind="alert").order_by("id"))
    assert [e.data["resolved"] for e in events] == [False, False, True]
    assert "worker-2" in events[1].text
    assert incident.signals.filter(firing=True).count() == 1  # worker-2 still fires


def test_retried_delivery_is_never_counted_twice(client, token):
    raw = token()
    body = alertmanager_payload()
    _post(client, body, raw)
    before = (
        TimelineEvent.objects.count(),
        AlertReceipt.objects.count(),
        AuditEntry.objects.count(),
    )
    response = _post(client, body, raw)
    assert response.json()["duplicates"] == 1 and response.json()["new_alerts"] == 0
    assert (
        TimelineEvent.objects.count(),
        AlertReceipt.objects.count(),
        AuditEntry.objects.count(),
    ) == before


def test_severity_label_goes_through_the_manager_mapping(client, token, make_user):
    services.ensure_defaults()
    services.alert_mapping_set(actor=make_user(Role.MANAGER), label_value="medium", severity=2)
    _post(client, alertmanager_payload(), token())
    assert Incident.objects.get().severity_id == 2
    assert AlertSeverityMapping.objects.get(label_value="medium").severity_id == 2


@pytest.mark.parametrize(
    "mutate, status, needle",
    [
        (lambda b: b.update(version="3"), 422, "version"),
        (lambda b: b.pop("groupKey"), 422, "groupKey"),
        (lambda b: b.update(alerts=[]), 422, "alerts"),
        (lambda b: b["alerts"][0].update(status="weird"), 422, "alerts[0].status"),
        (lambda b: b["alerts"][0].pop("labels"), 422, "labels"),
        (lambda b: b["alerts"][0].pop("startsAt"), 422, "startsAt"),
    ],
)
def test_bad_payload_names_the_problem_and_writes_nothing(client, token, mutate, status, needle):
    body = alertmanager_payload()
    mutate(body)
    response = _post(client, body, token())
    assert response.status_code == status and needle in response.json()["error"]
    assert not Incident.objects.exists() and not AlertReceipt.objects.exists()


def test_not_json_and_wrong_tokens(client, token):
    raw = token()
    response = client.post(URL, "{nope", content_type="application/json", headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]
    assert client.post(URL, alertmanager_payload(), content_type="application/json").status_code == 401
    assert _post(client, alertmanager_payload(), "opc_wrong").json()["error"] == "invalid or revoked API token"
    response = _post(client, alertmanager_payload(), token(Role.VIEWER))
    assert response.status_code == 403 and "incident.declare" in response.json()["error"]
    assert not Incident.objects.exists()


def test_api_declare_and_note(client, token):
    raw = token(Role.SRE)
    response = _post(client, {"title": "Payments failing", "severity": 2, "services": []}, raw, "/api/incidents")
    assert response.status_code == 201
    ref = response.json()["reference"]
    assert response.json()["status"] == Status.TRIGGERED
    response = _post(
        client,
        {"text": "from the bot", "occurred_at": "2020-01-01T00:00:00+00:00"},
        raw,
        f"/api/incidents/{ref}/notes",
    )
    assert response.status_code == 400 and "back-dated" in response.json()["error"]
    response = _post(client, {"text": "from the **bot**"}, raw, f"/api/incidents/{ref}/notes")
    assert response.status_code == 201
    assert TimelineEvent.objects.get(pk=response.json()["event_id"]).html == "<p>from the <strong>bot</strong></p>"
    assert _post(client, {"text": "x"}, raw, "/api/incidents/INC-1999-01-01-001/notes").status_code == 404
    assert _post(client, {"title": "", "severity": 2}, raw, "/api/incidents").status_code == 400
    # The declare page's form validates the API too: the error names the field.
    assert _post(client, {"title": "x", "severity": 12}, raw, "/api/incidents").json()["error"].startswith("severity:")
    got = client.get(f"/api/incidents/{ref}", headers={"Authorization": f"Bearer {raw}"})
    assert got.json()["reference"] == ref


def test_parse_computes_a_fingerprint_when_missing():
    body = alertmanager_payload()
    del body["alerts"][0]["fingerprint"]
    assert len(alerts.parse(body).alerts[0].fingerprint) == 16
