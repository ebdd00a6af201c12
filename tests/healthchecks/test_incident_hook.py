"""A check's state change opens, updates and marks resolved its incident (opt-in)."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from healthchecks import services
from healthchecks.models import MaintenanceWindow
from healthchecks.probes import ProbeResult
from incidents.models import Incident
from tests.healthchecks.factories import make_check, make_service


def _record(check, state, message, capture, summary=""):
    with capture(execute=True):
        services.record_results([(check.pk, ProbeResult(state, message, 5.0, summary=summary))])


@pytest.mark.django_db
def test_failing_check_opens_then_updates_its_incident(django_capture_on_commit_callbacks):
    check = make_check(make_service("Checkout API"), name="healthz", opens_incident=True, consecutive_needed=1)
    _record(check, "ok", "HTTP 200", django_capture_on_commit_callbacks)
    assert not Incident.objects.exists()  # unknown → ok is not a failure worth an incident... but it is sent
    _record(
        check,
        "critical",
        "HTTP 500: body is not JSON ('db password=hunter2')",
        django_capture_on_commit_callbacks,
        summary="HTTP 500: body is not JSON",
    )
    incident = Incident.objects.get(dedup_key=f"check:{check.pk}")
    assert incident.title == "Check failing: Checkout API / healthz"
    assert incident.severity_id == 2
    assert [s.name for s in incident.services.all()] == ["Checkout API"]
    _record(check, "ok", "HTTP 200", django_capture_on_commit_callbacks)
    assert Incident.objects.count() == 1
    texts = list(incident.events.values_list("text", flat=True))
    # The summary, never the detailed message: incidents reach every role and chat.
    assert any("**Firing:** healthz: ok → critical. HTTP 500: body is not JSON" in t for t in texts)
    assert not any("hunter2" in t for t in texts)
    assert "hunter2" not in str(list(incident.events.values_list("data", flat=True)))
    assert any("**Resolved:** healthz: critical → ok" in t for t in texts)


@pytest.mark.django_db
def test_no_incident_without_opt_in_or_during_maintenance(django_capture_on_commit_callbacks):
    quiet = make_check(opens_incident=False, consecutive_needed=1)
    maintained = make_check(opens_incident=True, consecutive_needed=1)
    now = timezone.now()
    MaintenanceWindow.objects.create(
        check_ref=maintained,
        starts_at=now - datetime.timedelta(minutes=1),
        ends_at=now + datetime.timedelta(hours=1),
        reason="failover test",
    )
    for check in (quiet, maintained):
        _record(check, "ok", "fine", django_capture_on_commit_callbacks)
        _record(check, "critical", "down", django_capture_on_commit_callbacks)
    assert not Incident.objects.exists()
