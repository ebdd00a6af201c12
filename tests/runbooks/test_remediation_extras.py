"""Auto-remediation around the edges: /metrics, demo data, the status board's
"Start runbook" and the dashboard's last-24-hours line."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from healthchecks.models import Check, CheckStateChange
from healthchecks.selectors import BOARD_PAGE_SIZE
from opsconsole.roles import Role
from runbooks import demo, remediation
from runbooks.models import ActionRun, RemediationBinding
from tests.healthchecks.factories import make_check, make_service
from tests.healthchecks.test_views import BOARD_QUERIES
from tests.runbooks.factories import system_admin


def _bind(check, **fields) -> RemediationBinding:
    return remediation.binding_save(
        actor=system_admin(),
        check=check,
        action="http",
        params={"method": "GET", "url": "http://127.0.0.1:9/dlq/replay"},
        cooldown_seconds=fields.pop("cooldown_seconds", 900),
        max_per_hour=fields.pop("max_per_hour", 5),
    )


def _change(check) -> int:
    return CheckStateChange.objects.create(
        check_ref=check, changed_at=timezone.now(), from_state="ok", to_state="critical"
    ).pk


def _samples(body: str, family: str) -> dict[tuple, float]:
    [found] = [f for f in text_string_to_metric_families(body) if f.name == family]
    return {tuple(sorted(s.labels.items())): s.value for s in found.samples if not s.name.endswith("_created")}


@pytest.mark.django_db
def test_metrics_count_automatic_runs_by_outcome_and_action_runs_by_status(client, settings):
    settings.RUNBOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    cooled = make_check(state="critical")
    _bind(cooled, cooldown_seconds=3600)
    limited = make_check(state="critical")
    _bind(limited, cooldown_seconds=0, max_per_hour=1)
    refused = make_check(state="critical")
    _bind(refused)
    # The worker is not what this test is about: the runs stay queued (no on_commit here).
    assert remediation.auto_remediate(_change(cooled)) == "queued"
    assert remediation.auto_remediate(_change(cooled)).startswith("skipped: cooldown")
    assert remediation.auto_remediate(_change(limited)) == "queued"
    assert remediation.auto_remediate(_change(limited)).startswith("skipped: at most 1")
    settings.RUNBOOK_ALLOWED_HOSTS = ["example.org"]
    assert remediation.auto_remediate(_change(refused)).startswith("skipped: not allowed")

    body = client.get(reverse("metrics")).content.decode()
    outcomes = _samples(body, "opsconsole_runbook_auto_remediations")
    assert outcomes == {
        (("outcome", "ran"),): 2.0,
        (("outcome", "skipped-cooldown"),): 1.0,
        (("outcome", "skipped-limit"),): 1.0,
        (("outcome", "refused"),): 1.0,
    }
    assert 'opsconsole_runbook_auto_remediations_total{outcome="ran"} 2.0' in body
    runs = _samples(body, "opsconsole_runbook_action_runs")
    assert runs == {(("action", "http"), ("status", "queued")): 2.0}
    ActionRun.objects.filter(check_ref=cooled).update(status=ActionRun.Status.SUCCEEDED)
    runs = _samples(client.get(reverse("metrics")).content.decode(), "opsconsole_runbook_action_runs")
    assert runs == {(("action", "http"), ("status", "queued")): 1.0, (("action", "http"), ("status", "succeeded")): 1.0}


@pytest.mark.django_db
def test_seed_demo_twice_binds_one_non_destructive_action(client_as):
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())
    [binding] = RemediationBinding.objects.select_related("check_ref__service")
    slug, name = demo.REMEDIATED_CHECK
    assert (binding.check_ref.service.slug, binding.check_ref.name) == (slug, name)
    assert binding.action == "run_check" and binding.params == {"check_id": binding.check_ref_id}
    assert binding.enabled and not binding.destructive and binding.approved_by is None
    page = client_as(Role.VIEWER).get(reverse("healthchecks:detail", args=[binding.check_ref_id])).content.decode()
    assert f"<code>check_id={binding.check_ref_id}</code>" in page  # not the dict's repr
    # A binding someone changed since is left as it is.
    RemediationBinding.objects.update(cooldown_seconds=60)
    call_command("seed_demo", stdout=io.StringIO())
    assert list(RemediationBinding.objects.values_list("cooldown_seconds", flat=True)) == [60]


@pytest.mark.django_db
@pytest.mark.parametrize("n", [3, 300])
def test_board_offers_start_runbook_on_failing_rows_only(client_as, django_assert_max_num_queries, n):
    service = make_service("Queue")
    Check.objects.bulk_create(
        [
            Check(
                service=service,
                name=f"c{i:04}",
                kind="tcp",
                config={"host": "127.0.0.1", "port": 1},
                state=("ok", "warning", "critical", "unknown")[i % 4],
                next_due_at=timezone.now(),
            )
            for i in range(n)
        ]
    )
    failing = list(Check.objects.filter(state__in=["warning", "critical"]).values_list("pk", flat=True))
    client = client_as(Role.SRE)
    with django_assert_max_num_queries(BOARD_QUERIES):
        body = client.get(reverse("healthchecks:board")).content.decode()
    # The board pages, worst first: the first page is all failing rows once there are enough.
    assert body.count(">Start runbook</a>") == min(len(failing), BOARD_PAGE_SIZE)
    critical = Check.objects.filter(state="critical").order_by("pk").values_list("pk", flat=True)[:5]
    for pk in critical:  # worst first: every critical row is on the first page
        assert f'href="{reverse("healthchecks:detail", args=[pk])}#check-runbooks">Start runbook</a>' in body
    # The section the link points at exists on the check page, with the start form.
    page = client.get(reverse("healthchecks:detail", args=[failing[0]])).content.decode()
    assert 'id="check-runbooks"' in page
    # A viewer cannot start a runbook: no link.
    viewer = client_as(Role.VIEWER).get(reverse("healthchecks:board")).content.decode()
    assert "Start runbook" not in viewer


@pytest.mark.django_db
def test_dashboard_shows_automatic_runs_of_the_last_day(client_as, settings, django_assert_max_num_queries):
    settings.RUNBOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    client = client_as(Role.VIEWER)
    assert "Automatic remediation, last 24 h: none." in client.get("/").content.decode()
    checks = [make_check(make_service(f"Svc {i}"), name=f"queue depth {i}", state="critical") for i in range(7)]
    for check in checks:
        _bind(check)
        assert remediation.auto_remediate(_change(check)) == "queued"
    ActionRun.objects.filter(check_ref=checks[0]).update(status=ActionRun.Status.FAILED)
    # Older than a day: not counted.
    ActionRun.objects.filter(check_ref=checks[1]).update(requested_at=timezone.now() - timezone.timedelta(hours=25))
    with django_assert_max_num_queries(25):  # tests/opsconsole/test_demo_and_pages.py's dashboard budget
        page = client.get("/").content.decode()
    assert "Automatic remediation, last 24 h: <strong>6 runs</strong>, 1 failed." in page
    assert page.count('#check-runbooks">queue depth') == 5  # the five newest
    assert '#check-runbooks">queue depth 6<' in page and '#check-runbooks">queue depth 1<' not in page
