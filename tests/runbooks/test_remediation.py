"""Auto-remediation: a check bound to an action that runs by itself when the
check turns critical, with a cooldown and an hourly maximum that hold when
workers race; destructive actions only with a Manager's pre-approval."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from healthchecks import services as check_services
from healthchecks.models import CheckStateChange
from healthchecks.probes import ProbeResult
from incidents.models import Incident, TimelineEvent
from opsconsole.audit import AuditEntry
from opsconsole.roles import Role
from runbooks import remediation
from runbooks.models import ActionRun, RemediationBinding
from tests.healthchecks.factories import make_check, make_service
from tests.healthchecks.targets import HttpTarget
from tests.runbooks.factories import system_admin


@pytest.fixture
def target(settings):
    hits = []

    def replay(handler):
        hits.append((handler.command, handler.headers.get("Idempotency-Key")))
        return (200, "application/json", '{"replayed": 3}', 0)

    server = HttpTarget({"/dlq/replay": replay})
    server.hits = hits
    settings.RUNBOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    yield server
    server.close()


def _bind(check, url: str, **fields) -> RemediationBinding:
    return remediation.binding_save(
        actor=system_admin(),
        check=check,
        action="http",
        params={"method": "GET", "url": url},
        cooldown_seconds=fields.pop("cooldown_seconds", 900),
        max_per_hour=fields.pop("max_per_hour", 2),
        **fields,
    )


def _critical(check) -> list[CheckStateChange]:
    return check_services.record_results([(check.pk, ProbeResult("critical", "HTTP 503", summary="HTTP 503"))])


@pytest.mark.django_db
def test_turning_critical_runs_the_bound_action_once_and_records_it(target, django_capture_on_commit_callbacks):
    check = make_check(make_service("Messenger"), name="queue depth", consecutive_needed=1, opens_incident=True)
    _bind(check, target.url("/dlq/replay"))
    with django_capture_on_commit_callbacks(execute=True):
        [change] = _critical(check)
    with django_capture_on_commit_callbacks(execute=True):
        assert _critical(check) == []  # still critical: no new change, nothing runs again
    [run] = ActionRun.objects.filter(check_ref=check)
    assert run.trigger_id == change.pk and run.step_run_id is None and run.status == "succeeded"
    assert target.hits == [("GET", str(run.idempotency_key))]
    incident = Incident.objects.get(dedup_key=f"check:{check.pk}")
    assert run.incident_id == incident.pk
    texts = list(TimelineEvent.objects.filter(incident=incident).values_list("text", flat=True))
    assert any("Auto-remediation for check **queue depth**" in t for t in texts)
    assert any("**HTTP request** succeeded" in t for t in texts)
    assert AuditEntry.objects.filter(action="runbooks.auto_remediation").count() == 1
    assert AuditEntry.objects.filter(action="runbooks.action_succeeded").count() == 1
    # A redelivered trigger task does nothing more.
    assert remediation.auto_remediate(change.pk) == "already triggered"
    assert ActionRun.objects.filter(check_ref=check).count() == 1


def _race(change_ids: list[int]) -> list[str]:
    barrier = threading.Barrier(len(change_ids))
    results: list[str] = [""] * len(change_ids)

    def work(index: int, change_id: int) -> None:
        try:
            barrier.wait(10)
            results[index] = remediation.auto_remediate(change_id)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i, pk)) for i, pk in enumerate(change_ids)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def _critical_check():
    # Already critical: the fix verification that follows each run (it probes
    # this unreachable TCP target again) then records no new state change.
    return make_check(consecutive_needed=1, state="critical", last_checked_at=timezone.now())


def _changes(check, count: int) -> list[int]:
    now = timezone.now()
    return [
        CheckStateChange.objects.create(check_ref=check, changed_at=now, from_state="ok", to_state="critical").pk
        for _ in range(count)
    ]


@pytest.mark.django_db(transaction=True)
def test_cooldown_holds_when_workers_race(target):
    check = _critical_check()
    _bind(check, target.url("/dlq/replay"), cooldown_seconds=3600, max_per_hour=10)
    results = _race(_changes(check, 4))
    assert sorted(r.split(":")[0] for r in results) == ["queued", "skipped", "skipped", "skipped"], results
    assert ActionRun.objects.filter(check_ref=check).count() == 1 and len(target.hits) == 1
    assert AuditEntry.objects.filter(action="runbooks.auto_remediation_skip").count() == 3
    binding = RemediationBinding.objects.get(check_ref=check)
    assert binding.last_skip_reason.startswith("cooldown")


@pytest.mark.django_db(transaction=True)
def test_hourly_maximum_holds_when_workers_race(target):
    check = _critical_check()
    _bind(check, target.url("/dlq/replay"), cooldown_seconds=0, max_per_hour=2)
    results = _race(_changes(check, 5))
    assert sum(r == "queued" for r in results) == 2, results
    assert ActionRun.objects.filter(check_ref=check).count() == 2 and len(target.hits) == 2
    assert RemediationBinding.objects.get(check_ref=check).last_skip_reason.startswith("at most 2 run(s) per hour")


@pytest.mark.django_db
def test_a_target_removed_from_the_allowlist_is_not_called(target, settings):
    check = make_check(consecutive_needed=1)
    _bind(check, target.url("/dlq/replay"))
    settings.RUNBOOK_ALLOWED_HOSTS = ["example.org"]
    [change_id] = _changes(check, 1)
    assert remediation.auto_remediate(change_id).startswith("skipped: not allowed")
    assert target.hits == [] and not ActionRun.objects.exists()


@pytest.mark.django_db
def test_destructive_binding_needs_a_manager_preapproval(client_as, settings):
    settings.RUNBOOK_ALLOWED_NAMESPACES = ["prod"]
    settings.RUNBOOK_ALLOWED_DEPLOYMENTS = ["prod/crm-worker"]
    check = make_check()
    url = reverse("runbooks:remediation_edit", args=[check.pk])
    form = {
        "action": "k8s_scale",
        "params": '{"namespace": "prod", "deployment": "crm-worker", "replicas": 5}',
        "cooldown_seconds": "600",
        "max_per_hour": "2",
        "enabled": "on",
    }
    sre = client_as(Role.SRE)
    response = sre.post(url, form)
    assert response.status_code == 200
    assert "is destructive: it runs by itself only with a Manager" in response.content.decode()
    response = sre.post(url, form | {"preapprove": "on"})
    assert "Only a Manager may pre-approve" in response.content.decode()
    bad = sre.post(url, form | {"params": '{"namespace": "kube-system", "deployment": "x", "replicas": 5}'})
    assert "not in RUNBOOK_ALLOWED_NAMESPACES" in bad.content.decode()
    assert not RemediationBinding.objects.exists()
    assert not AuditEntry.objects.filter(action="runbooks.remediation_bind").exists()

    manager = client_as(Role.MANAGER)
    manager_user = manager.user  # client_as signs the same client in again below
    response = manager.post(url, form | {"preapprove": "on"})
    assert response.status_code == 302
    binding = RemediationBinding.objects.get(check_ref=check)
    assert binding.destructive and binding.approved_by == manager_user and binding.approved_at is not None
    entry = AuditEntry.objects.get(action="runbooks.remediation_bind")
    assert entry.after["approved_by"] == manager_user.pk

    # A new cooldown keeps the approval; another replica count needs a new one.
    sre = client_as(Role.SRE)
    assert sre.post(url, form | {"cooldown_seconds": "1200"}).status_code == 302
    binding.refresh_from_db()
    assert binding.cooldown_seconds == 1200 and binding.approved_by == manager_user
    changed = form | {"params": '{"namespace": "prod", "deployment": "crm-worker", "replicas": 9}'}
    assert "is destructive" in sre.post(url, changed).content.decode()
    binding.refresh_from_db()
    assert binding.params["replicas"] == 5

    page = sre.get(reverse("healthchecks:detail", args=[check.pk])).content.decode()
    assert f"Pre-approved by {manager_user}" in page


@pytest.mark.django_db
def test_check_page_lists_the_runs_and_a_viewer_cannot_bind(client_as, target, django_capture_on_commit_callbacks):
    check = make_check(consecutive_needed=1)
    _bind(check, target.url("/dlq/replay"))
    with django_capture_on_commit_callbacks(execute=True):
        _critical(check)
    viewer = client_as(Role.VIEWER)
    page = viewer.get(reverse("healthchecks:detail", args=[check.pk])).content.decode()
    assert 'data-testid="remediation-runs"' in page and "(automatic)" in page and "Succeeded" in page
    assert reverse("runbooks:remediation_edit", args=[check.pk]) not in page
    assert viewer.get(reverse("runbooks:remediation_edit", args=[check.pk])).status_code == 403
    assert viewer.post(reverse("runbooks:remediation_delete", args=[check.pk])).status_code == 403
    sre = client_as(Role.SRE)
    assert sre.post(reverse("runbooks:remediation_delete", args=[check.pk])).status_code == 302
    assert not RemediationBinding.objects.exists()
    assert AuditEntry.objects.filter(action="runbooks.remediation_unbind").count() == 1
