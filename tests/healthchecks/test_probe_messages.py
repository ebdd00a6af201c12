"""What a probe fetched is quoted only as a short excerpt, and only to roles
with `config.edit`; everyone else sees the state and a summary. Heartbeat
URLs are for `config.edit` too, and their token can be rotated."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from checklists.services import check_evidence
from healthchecks import services
from healthchecks.models import Check, CheckResult, CheckStateChange
from opsconsole.models import AuditEntry
from opsconsole.roles import Role
from tests.healthchecks.factories import make_check, make_service
from tests.healthchecks.targets import HttpTarget, json_route
from tests.healthchecks.test_probes import probe

SECRET = "AKIA-SECRET-" + "k" * 5000


@pytest.fixture
def leaky():
    server = HttpTarget(
        {
            "/json": json_route({"status": SECRET}),
            "/text": (200, "text/plain", "password=" + SECRET, 0),
            "/error": (500, "text/plain", SECRET, 0),
        }
    )
    yield server
    server.close()


def test_fetched_values_are_quoted_as_a_short_excerpt_only(leaky):
    value = probe("http", {"url": leaky.url("/json"), "json_path": "status", "json_equals": "healthy"})
    body = probe("http", {"url": leaky.url("/text"), "json_path": "status"})
    for result in (value, body):
        assert result.state == "critical"
        assert "AKIA-SECRET" in result.message and "k" * 40 not in result.message
        assert len(result.message) < 120
        assert "AKIA" not in result.summary and "password" not in result.summary
    assert value.summary == "HTTP 200: status differs from the expected value"
    assert body.summary == "HTTP 200: body is not JSON"
    error = probe("http", {"url": leaky.url("/error")})
    assert error.summary == error.message == "HTTP 500, expected 2xx/3xx"


@pytest.fixture
def leaked_check(leaky):
    """A check whose probe fetched a secret, recorded the way the worker does."""
    check = make_check(
        make_service("Billing"),
        name="billing health",
        kind="http",
        config={"url": leaky.url("/text"), "json_path": "status"},
        consecutive_needed=1,
    )
    services.run_checks([check.pk])
    check.refresh_from_db()
    assert check.state == "critical" and "AKIA-SECRET" in check.last_message
    assert CheckStateChange.objects.filter(check_ref=check).exists()
    return check


@pytest.mark.django_db
@pytest.mark.parametrize("role, sees", [(Role.VIEWER, False), (Role.SRE, True), (Role.ADMIN, True)])
def test_board_page_and_dashboard_show_details_only_to_config_edit(client_as, leaked_check, role, sees):
    client = client_as(role)
    pages = [
        client.get(reverse("healthchecks:board")),
        client.get(reverse("healthchecks:board"), headers={"HX-Request": "true"}),
        client.get(reverse("healthchecks:detail", args=[leaked_check.pk])),
        client.get(reverse("dashboard")),
    ]
    for response in pages:
        body = response.content.decode()
        assert response.status_code == 200
        assert ("AKIA-SECRET" in body) is sees, response.request["PATH_INFO"]
        assert "body is not JSON" in body  # the summary (or the message) says what failed


@pytest.mark.django_db
def test_metrics_checklist_evidence_audit_and_incident_never_carry_the_excerpt(client, leaked_check):
    assert "AKIA" not in client.get("/metrics").content.decode()
    assert "AKIA" not in check_evidence(leaked_check)
    assert check_evidence(leaked_check).startswith(
        "Health check “billing health”: Critical — HTTP 200: body is not JSON"
    )
    audit = AuditEntry.objects.filter(action="healthchecks.state_change")
    assert audit.exists() and not any("AKIA" in str(entry.after) for entry in audit)
    result = CheckResult.objects.get(check_ref=leaked_check)
    assert result.summary == "HTTP 200: body is not JSON" and "AKIA" in result.message


@pytest.mark.django_db
def test_run_now_result_with_details_for_the_editor(client_as, leaked_check):
    client = client_as(Role.SRE)
    body = client.post(
        reverse("healthchecks:run_now", args=[leaked_check.pk]), headers={"HX-Request": "true"}
    ).content.decode()
    assert "AKIA-SECRET" in body and "k" * 41 not in body
    entry = AuditEntry.objects.get(action="healthchecks.run_now")
    assert entry.after == {"state": "critical", "summary": "HTTP 200: body is not JSON"}


@pytest.mark.django_db
def test_board_query_count_unchanged_by_summaries(client_as, django_assert_max_num_queries):
    for i in range(30):
        make_check(name=f"c{i}", last_message="detail", last_summary="summary")
    client = client_as(Role.VIEWER)
    with django_assert_max_num_queries(8):
        client.get(reverse("healthchecks:board"))


# --- heartbeats ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role, sees", [(Role.VIEWER, False), (Role.SRE, True)])
def test_heartbeat_urls_only_for_config_edit(client_as, role, sees):
    check = make_check(kind="heartbeat", config={"period_seconds": 3600})
    body = client_as(role).get(reverse("healthchecks:detail", args=[check.pk])).content.decode()
    assert (str(check.heartbeat_token) in body) is sees
    assert ("Rotate the token" in body) is sees


@pytest.mark.django_db
def test_rotating_the_token_retires_the_old_url_and_is_audited(client_as):
    check = make_check(kind="heartbeat", config={"period_seconds": 3600}, consecutive_needed=1)
    old = check.heartbeat_token
    anonymous = Client()
    assert anonymous.get(f"/health/ping/{old}").status_code == 200
    client = client_as(Role.SRE)
    response = client.post(reverse("healthchecks:heartbeat_rotate", args=[check.pk]))
    assert response.status_code == 302
    check.refresh_from_db()
    assert check.heartbeat_token != old
    assert anonymous.get(f"/health/ping/{old}").status_code == 404
    assert anonymous.get(f"/health/ping/{old}/fail").status_code == 404
    assert anonymous.get(f"/health/ping/{check.heartbeat_token}").status_code == 200
    entry = AuditEntry.objects.get(action="healthchecks.heartbeat_rotate")
    assert entry.actor_id == client.user.pk
    assert str(old) not in str(entry.after) and str(check.heartbeat_token) not in str(entry.after)
    page = client.get(reverse("healthchecks:detail", args=[check.pk])).content.decode()
    assert str(check.heartbeat_token) in page and str(old) not in page


@pytest.mark.django_db
def test_a_viewer_cannot_rotate(client_as):
    check = make_check(kind="heartbeat", config={"period_seconds": 3600})
    response = client_as(Role.VIEWER).post(reverse("healthchecks:heartbeat_rotate", args=[check.pk]))
    assert response.status_code == 403
    assert Check.objects.get(pk=check.pk).heartbeat_token == check.heartbeat_token


def test_errors_without_a_summary_of_their_own_keep_only_their_leading_words():
    from healthchecks.probes.base import ProbeError

    assert ProbeError("malformed HTTP response: status line 'secret'").summary == "malformed HTTP response"
    assert ProbeError("redirect loop: 'http://a/?token=1' → 'http://b/'").summary == "redirect loop"
    assert ProbeError("stopped after 10 redirects (the last to 'http://x/a: b')").summary == "check failed"
    assert ProbeError("header 'X: y' contains a line break").summary == "check failed"


@pytest.mark.django_db
def test_a_runbook_run_check_action_reports_the_summary(make_user, leaky):
    from runbooks import execution
    from runbooks.models import StepRun
    from tests.runbooks.factories import make_runbook, start

    check = make_check(kind="http", config={"url": leaky.url("/text"), "json_path": "status"})
    sre = make_user(Role.SRE)
    run = start(make_runbook(action="run_check", action_step=1), actor=sre)
    step_run = StepRun.objects.get(execution=run, order=1)
    action_run = execution.action_request(actor=sre, step_run=step_run, data={"check_id": str(check.pk)})
    execution.perform_action(action_run.pk)
    action_run.refresh_from_db()
    # Runbook output is read by every role: the summary, never the excerpt.
    assert "body is not JSON" in action_run.output and "AKIA" not in action_run.output
