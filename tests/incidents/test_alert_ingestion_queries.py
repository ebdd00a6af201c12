"""An Alertmanager delivery costs the same number of SQL statements whatever
the number of alerts it carries: a storm of 20-alert deliveries must not pay
per alert (bulk receipts, one lookup of every service and severity label,
one audit batch per delivery)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from incidents.models import AlertReceipt, Incident, IncidentSignal
from opsconsole import audit_verify
from opsconsole.models import ApiToken, AuditEntry, Service
from opsconsole.roles import Role

pytestmark = pytest.mark.django_db
URL = "/api/alerts/alertmanager"
SEVERITIES = ("critical", "high", "medium", "low", "page-me", "")
SERVICES = ("message-queue", "Payments", "billing", "unknown-service", "")

# Through the webhook, token check and the test's own savepoint included
# (the per-alert version took 45 for 2 alerts and 52 for 20, 18 to resolve).
MOST_FOR_NEW_INCIDENT = 27
MOST_FOR_RESOLVE = 14


def _payload(group: str, count: int, status: str = "firing", first: int = 0) -> dict:
    alerts = [
        {
            "status": status,
            # Every alert its own severity and service label: per-label
            # lookups would show as more statements for more alerts.
            "labels": {
                "alertname": f"Backlog{group}",
                "severity": SEVERITIES[n % len(SEVERITIES)],
                "service": SERVICES[n % len(SERVICES)],
                "instance": f"worker-{n}",
            },
            "annotations": {"summary": f"queue {n} > 1000"},
            "startsAt": "2026-11-23T10:00:00Z",
            "endsAt": "2026-11-23T10:30:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
            "fingerprint": f"{group}-{n:04d}",
        }
        for n in range(first, first + count)
    ]
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="Backlog{group}"}}',
        "status": status,
        "receiver": "console",
        "groupLabels": {"alertname": f"Backlog{group}"},
        "commonLabels": {"alertname": f"Backlog{group}"},
        "commonAnnotations": {},
        "alerts": alerts,
    }


def _statements(client, raw: str, body: dict) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.post(URL, body, content_type="application/json", headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 200, response.content
    return len(queries.captured_queries)


def _phases(client, raw: str, group: str, count: int) -> dict[str, int]:
    """Statements of each kind of delivery for one group of `count` alerts."""
    return {
        "new incident": _statements(client, raw, _payload(group, count)),
        "more alerts firing": _statements(client, raw, _payload(group, count, first=count)),
        "resolved": _statements(client, raw, _payload(group, 2 * count, "resolved")),
        "retried": _statements(client, raw, _payload(group, 2 * count, "resolved")),
    }


def test_a_delivery_costs_the_same_statements_for_2_and_20_alerts(client, make_user, django_assert_num_queries):
    Service.objects.create(name="Message queue", slug="message-queue")
    Service.objects.create(name="Payments", slug="payments")
    raw, prefix, token_hash = ApiToken.generate()
    ApiToken.objects.create(user=make_user(Role.SRE), name="am", prefix=prefix, token_hash=token_hash)
    # The token's first use writes its last-use time; measure after it.
    _statements(client, raw, _payload("warm-up", 1))

    small = _phases(client, raw, "a", 2)
    large = _phases(client, raw, "b", 20)

    assert large == small
    assert small["new incident"] <= MOST_FOR_NEW_INCIDENT, small
    assert small["resolved"] <= MOST_FOR_RESOLVE, small
    # django_assert_num_queries style, on a third size.
    with django_assert_num_queries(small["new incident"]):
        response = client.post(
            URL, _payload("c", 7), content_type="application/json", headers={"Authorization": f"Bearer {raw}"}
        )
    assert response.json()["new_alerts"] == 7

    # Same result for every size: the work was done, not skipped.
    for group, delivered in (("a", 4), ("b", 40), ("c", 7)):
        incident = Incident.objects.get(title=f"Backlog{group}")
        assert incident.severity_id == 1  # "critical" is among the labels
        # Each alert named a service; the two that exist are linked, the rest are not.
        assert sorted(incident.services.values_list("slug", flat=True)) == ["message-queue", "payments"]
        signals = IncidentSignal.objects.filter(incident=incident)
        assert signals.count() == delivered
        assert signals.filter(firing=True).count() == (delivered if group == "c" else 0)
        receipts = AlertReceipt.objects.filter(incident=incident).count()
        assert receipts == (delivered if group == "c" else 2 * delivered)
    assert not list(audit_verify.verify_chain())
    # One audit entry for each delivery that brought something new, whatever its size.
    assert AuditEntry.objects.filter(action="incident.alertmanager_delivery").count() == 1 + 3 + 3 + 1


def test_services_are_found_by_slug_then_name_then_pk_in_one_query(django_assert_num_queries):
    from incidents.services import _resolve_services

    queue = Service.objects.create(name="Message queue", slug="message-queue")
    # A service whose name is another one's slug: the slug wins, as before.
    named = Service.objects.create(name="payments", slug="billing-payments")
    payments = Service.objects.create(name="Payments API", slug="payments")
    with django_assert_num_queries(1):
        found, missing = _resolve_services(
            ["message-queue", "MESSAGE QUEUE", "payments", "billing-payments", str(named.pk), " ", "nope", "²", queue]
        )
    assert found == [queue, queue, payments, named, named, queue]
    assert missing == ["nope", "²"]
    with django_assert_num_queries(0):
        assert _resolve_services([queue, ""]) == ([queue], [])


def test_the_highest_sev_among_labels_in_one_query(django_assert_num_queries, settings):
    from incidents.services import alert_severity, alert_severity_highest

    settings.ALERT_DEFAULT_SEVERITY = 3
    with django_assert_num_queries(1):
        assert alert_severity_highest({"LOW", "medium", "unmapped", None, ""}) == 3
    critical = alert_severity("critical")
    with django_assert_num_queries(1):
        assert alert_severity_highest(["low", "Critical "]) == critical == 1
    with django_assert_num_queries(0):
        assert alert_severity_highest([None, " "]) == 3


def test_the_incident_id_is_taken_before_the_delivery_and_only_when_it_opens_one(client, make_user):
    from incidents.models import DailyCounter

    raw, prefix, token_hash = ApiToken.generate()
    ApiToken.objects.create(user=make_user(Role.SRE), name="am", prefix=prefix, token_hash=token_hash)

    def post(body):
        response = client.post(URL, body, content_type="application/json", headers={"Authorization": f"Bearer {raw}"})
        assert response.status_code == 200, response.content
        return response.json()

    first = post(_payload("a", 3))
    second = post(_payload("b", 3))
    assert first["incident"].endswith("-001") and second["incident"].endswith("-002")
    # Retries, more alerts of an open group and resolves take no id.
    post(_payload("a", 3))
    post(_payload("a", 2, first=3))
    post(_payload("a", 5, "resolved"))
    # Alertmanager re-sending what still fires after people resolved the incident: no id either.
    Incident.objects.filter(title="Backloga").update(status="resolved")
    assert post(_payload("a", 3)) == {"incident": None, "new_alerts": 0, "duplicates": 3}
    assert DailyCounter.objects.get().last == 2
    assert post(_payload("c", 1))["incident"].endswith("-003")
