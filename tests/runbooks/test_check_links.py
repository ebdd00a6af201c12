"""A failing check's page starts a runbook pre-linked to the check and its open
incident; a person picks the check (and settle time) that verifies a fix, and
the real probe against a local HTTP server records whether the fix held."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from incidents import services as incident_services
from incidents.models import TimelineEvent
from opsconsole.audit import AuditEntry
from opsconsole.roles import Role
from runbooks.models import ActionRun, Execution
from tests.healthchecks.factories import make_check, make_service
from tests.healthchecks.targets import HttpTarget, json_route
from tests.runbooks.factories import make_runbook, system_admin

pytestmark = pytest.mark.django_db


def _open_incident_for(check):
    return incident_services.open_or_update_from_source(
        dedup_key=f"check:{check.pk}",
        title=f"Check failing: {check.name}",
        severity=2,
        services=(check.service,),
        text="critical",
        source_kind="check",
    )


def test_failing_check_page_starts_a_runbook_linked_to_the_check_and_its_incident(client_as):
    service = make_service("Messenger")
    check = make_check(service, name="queue depth", state="critical", opens_incident=True)
    incident = _open_incident_for(check)
    runbook = make_runbook("Messenger Queue Backlog", steps=2, services=[service])
    sre = client_as(Role.SRE)
    page = sre.get(reverse("healthchecks:detail", args=[check.pk])).content.decode()
    assert f'data-testid="start-runbook-{runbook.pk}"' in page
    assert f'name="check_id" value="{check.pk}"' in page and f'value="{incident.reference}"' in page
    response = sre.post(
        reverse("runbooks:start", args=[runbook.pk]), {"check_id": check.pk, "incident": incident.reference}
    )
    execution = Execution.objects.get()
    assert response.status_code == 302 and response.url == reverse("runbooks:execution", args=[execution.pk])
    assert execution.check_ref == check and execution.incident == incident
    assert TimelineEvent.objects.filter(incident=incident, text__contains="Messenger Queue Backlog").exists()
    # "Find another runbook" carries the check to any runbook's start form.
    other = make_runbook("Restart the gateway", steps=1)
    listing = sre.get(reverse("runbooks:index"), {"check": check.pk}).content.decode()
    assert f"{reverse('runbooks:detail', args=[other.pk])}?check={check.pk}" in listing
    detail = sre.get(reverse("runbooks:detail", args=[other.pk]), {"check": check.pk}).content.decode()
    assert f'name="check_id" value="{check.pk}"' in detail and 'data-testid="start-check"' in detail
    # A viewer sees the section but no start button.
    viewer_page = client_as(Role.VIEWER).get(reverse("healthchecks:detail", args=[check.pk])).content.decode()
    assert 'data-testid="check-runbooks"' in viewer_page and "start-runbook-" not in viewer_page


@pytest.fixture
def service_target(settings):
    state = {"healthy": True}

    def healthz(handler):
        return (200, "application/json", '{"status": "ok"}', 0) if state["healthy"] else (503, "text/plain", "down", 0)

    target = HttpTarget({"/healthz": healthz, "/dlq/replay": json_route({"replayed": 4})})
    target.state = state
    settings.RUNBOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    yield target
    target.close()


@pytest.mark.parametrize("healthy, verdict", [(True, "fix verified"), (False, "fix did not hold")])
def test_picked_check_verifies_the_fix_after_the_settle_time(
    client_as, service_target, django_capture_on_commit_callbacks, healthy, verdict
):
    service_target.state["healthy"] = healthy
    service = make_service("Messenger")
    check = make_check(service, name="messenger health", kind="http", config={"url": service_target.url("/healthz")})
    runbook = make_runbook(
        "Replay the DLQ",
        steps=2,
        action="http",
        params={"method": "GET", "url": service_target.url("/dlq/replay")},
        action_step=1,
        services=[service],
    )
    incident = incident_services.incident_declare(
        actor=system_admin(), title="Messenger backlog", severity=2, services=[service]
    )
    sre = client_as(Role.SRE)
    start = sre.post(reverse("runbooks:start", args=[runbook.pk]), {"incident": incident.reference})
    execution = Execution.objects.get()
    page = sre.get(start.url).content.decode()
    assert f'<option value="{check.pk}">Messenger / messenger health' in page  # offered: the runbook's service
    url = reverse("runbooks:action_request", args=[execution.pk, 1])
    with django_capture_on_commit_callbacks(execute=True):
        response = sre.post(
            url,
            {"method": "GET", "url": service_target.url("/dlq/replay"), "verify_check": check.pk, "verify_settle": 0},
        )
    assert response.status_code == 302
    run = ActionRun.objects.get()
    execution.refresh_from_db()
    check.refresh_from_db()
    assert run.status == "succeeded" and run.verify_check == check and run.verify_settle_seconds == 0
    assert run.verification == verdict and execution.verification == verdict
    assert check.state == ("ok" if healthy else "critical") or check.pending_state  # the real probe ran
    texts = list(TimelineEvent.objects.filter(incident=incident).values_list("text", flat=True))
    assert any(t.startswith(verdict.capitalize()) and "messenger health" in t for t in texts), texts
    assert AuditEntry.objects.filter(action="runbooks.fix_verification").count() == 1
    assert verdict in sre.get(start.url).content.decode()


def test_bad_verification_input_is_refused_and_nothing_is_requested(client_as, service_target):
    check = make_check(name="messenger health", kind="http", config={"url": service_target.url("/healthz")})
    runbook = make_runbook(
        "Replay",
        steps=1,
        action="http",
        params={"method": "GET", "url": service_target.url("/dlq/replay")},
        action_step=1,
    )
    sre = client_as(Role.SRE)
    sre.post(reverse("runbooks:start", args=[runbook.pk]), {"check_id": check.pk})
    execution = Execution.objects.get()
    url = reverse("runbooks:action_request", args=[execution.pk, 1])
    base = {"method": "GET", "url": service_target.url("/dlq/replay")}
    for extra, message in [
        ({"verify_check": check.pk, "verify_settle": "99999"}, "between 0 and 3600"),
        ({"verify_check": "abc", "verify_settle": "5"}, "Pick a check from the list"),
        ({"verify_check": "999999", "verify_settle": "5"}, "No such check"),
    ]:
        response = sre.post(url, base | extra, headers={"HX-Request": "true"})
        assert response.status_code == 200 and message in response.content.decode()
    assert not ActionRun.objects.exists()
    # The execution's own check is the default pick.
    page = sre.get(reverse("runbooks:execution", args=[execution.pk])).content.decode()
    assert f'<option value="{check.pk}" selected>' in page
    assert execution.started_at <= timezone.now()
