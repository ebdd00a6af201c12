"""Runbook versions, search, executions, four-eyes approval and the SEV-1 override."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from incidents import services as incident_services
from incidents.models import TimelineEvent
from opsconsole.audit import AuditEntry
from opsconsole.models import Service
from opsconsole.roles import Role
from runbooks import execution, selectors, services
from runbooks.models import ActionRun, Execution, StepRun
from tests.runbooks.factories import awaiting_run, make_runbook, start, system_admin

pytestmark = pytest.mark.django_db


def test_editing_writes_a_new_version_and_executions_keep_theirs(make_user):
    runbook = make_runbook("Queue backlog", steps=2)
    pinned = start(runbook)
    steps = [services.StepSpec("Look"), services.StepSpec("Scale"), services.StepSpec("Watch")]
    runbook, changed = services.runbook_save(
        actor=make_user(Role.SRE), runbook=runbook, title="Queue backlog", symptoms="x", steps=steps, base_version=1
    )
    assert changed and runbook.current_version.number == 2
    assert pinned.version.number == 1 and pinned.step_runs.count() == 2
    assert start(runbook).step_runs.count() == 3
    assert AuditEntry.objects.filter(action="runbooks.version_create").count() == 2


def test_saving_the_same_content_writes_nothing(make_user):
    runbook = make_runbook("Same", steps=2)
    specs = [services.StepSpec(s.title, s.instructions, s.command) for s in runbook.current_version.steps.all()]
    _, changed = services.runbook_save(
        actor=make_user(Role.SRE), runbook=runbook, title="Same", symptoms=runbook.symptoms, steps=specs
    )
    assert not changed and runbook.versions.count() == 1


def test_a_stale_editor_is_refused_not_overwriting(make_user):
    runbook = make_runbook("Stale", steps=1)
    services.runbook_save(
        actor=make_user(Role.SRE),
        runbook=runbook,
        title="Stale",
        symptoms="",
        steps=[services.StepSpec("Theirs")],
        base_version=1,
    )
    with pytest.raises(services.StaleVersion):
        services.runbook_save(
            actor=make_user(Role.SRE),
            runbook=runbook,
            title="Stale",
            symptoms="",
            steps=[services.StepSpec("Mine")],
            base_version=1,
        )
    assert runbook.versions.count() == 2


def test_validation_refuses_before_writing(make_user):
    with pytest.raises(ValidationError) as refused:
        services.runbook_save(
            actor=make_user(Role.SRE),
            runbook=None,
            title=" ",
            symptoms="",
            steps=[services.StepSpec("x", action="rm_rf")],
        )
    assert "A runbook needs a title." in refused.value.messages
    assert "Step 1: unknown action 'rm_rf'." in refused.value.messages
    with pytest.raises(PermissionDenied):
        services.runbook_save(
            actor=make_user(Role.VIEWER), runbook=None, title="t", symptoms="", steps=[services.StepSpec("x")]
        )


def test_full_text_search_ranks_titles_symptoms_and_steps():
    make_runbook("Messenger Queue Backlog", symptoms="RabbitMQ messages pile up")
    other = make_runbook("Database failover", symptoms="replica lag")
    services.runbook_save(
        actor=system_admin(),
        runbook=other,
        title="Database failover",
        symptoms="replica lag",
        steps=[services.StepSpec("Promote the replica", command="pg_ctl promote")],
    )
    assert [r.title for r in selectors.runbook_list("queue backlog")] == ["Messenger Queue Backlog"]
    assert [r.title for r in selectors.runbook_list("rabbitmq")] == ["Messenger Queue Backlog"]
    assert [r.title for r in selectors.runbook_list("promote")] == ["Database failover"]  # a step's text
    assert [r.title for r in selectors.runbook_list("replicas")] == ["Database failover"]  # stemmed
    assert list(selectors.runbook_list("kubernetes")) == []
    assert len(selectors.runbook_list("")) == 2


def test_search_uses_the_gin_index():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'runbook_search_gin'")
        assert "USING gin (search_vector)" in cursor.fetchone()[0]


def test_steps_are_marked_once_with_who_and_when_and_land_on_the_timeline(make_user):
    sre, other = make_user(Role.SRE), make_user(Role.SRE)
    incident = incident_services.incident_declare(actor=sre, title="Queue backlog", severity=2, summary="")
    run = start(make_runbook(steps=2), incident=incident, actor=sre)
    first = run.step_runs.get(order=1)
    execution.step_mark(actor=sre, step_run_id=first.pk, state="done")
    with pytest.raises(ValidationError, match="already marked this step Done"):
        execution.step_mark(actor=other, step_run_id=first.pk, state="failed", note="no")
    with pytest.raises(ValidationError, match="needs a reason"):
        execution.step_mark(actor=other, step_run_id=run.step_runs.get(order=2).pk, state="skipped")
    execution.step_mark(actor=other, step_run_id=run.step_runs.get(order=2).pk, state="skipped", note="not needed")
    first.refresh_from_db()
    assert first.by == sre and first.at is not None
    run.refresh_from_db()
    assert run.status == Execution.Status.COMPLETED
    texts = list(TimelineEvent.objects.filter(incident=incident, kind="runbook").values_list("text", flat=True))
    assert any("Step 1 “Step 1” done by" in t for t in texts)
    assert any("skipped by" in t and "not needed" in t for t in texts)
    assert any("completed" in t for t in texts)


def test_pause_blocks_marks_and_another_person_resumes(make_user):
    sre, other = make_user(Role.SRE), make_user(Role.INCIDENT_COMMANDER)
    run = start(make_runbook(steps=2), actor=sre)
    execution.execution_set_status(actor=sre, execution=run, to="paused", reason="waiting for DBA")
    with pytest.raises(ValidationError, match="paused"):
        execution.step_mark(actor=sre, step_run_id=run.step_runs.get(order=1).pk, state="done")
    execution.execution_set_status(actor=other, execution=run, to="running")
    run.refresh_from_db()
    assert run.status == "running" and run.status_changed_by == other
    with pytest.raises(ValidationError, match="already running"):
        execution.execution_set_status(actor=sre, execution=run, to="running")


def test_four_eyes(make_user):
    sre, colleague, viewer = make_user(Role.SRE), make_user(Role.SRE), make_user(Role.VIEWER)
    run = start(make_runbook(action="k8s_scale", action_step=1), actor=sre)
    action_run = awaiting_run(run.step_runs.get(order=1), requested_by=sre)
    with pytest.raises(PermissionDenied, match="second person"):
        execution.action_approve(actor=sre, run=action_run)
    with pytest.raises(PermissionDenied):
        execution.action_approve(actor=viewer, run=action_run)
    execution.action_approve(actor=colleague, run=action_run)
    action_run.refresh_from_db()
    assert action_run.status == "queued" and action_run.approved_by == colleague
    with pytest.raises(ValidationError, match="already queued"):
        execution.action_reject(actor=colleague, run=action_run)
    assert AuditEntry.objects.filter(action="runbooks.action_approve").count() == 1
    # The database refuses a self-approval without an override reason.
    with pytest.raises(IntegrityError), transaction.atomic():
        ActionRun.objects.filter(pk=action_run.pk).update(approved_by=sre)


def test_only_the_commander_of_an_open_sev1_may_override(make_user):
    commander, sre = make_user(Role.INCIDENT_COMMANDER), make_user(Role.SRE)
    sev2 = incident_services.incident_declare(actor=commander, title="Slow", severity=2, summary="")
    sev2.commander = commander
    sev2.save()
    run = start(make_runbook(action="k8s_scale", action_step=1), incident=sev2, actor=commander)
    action_run = awaiting_run(run.step_runs.get(order=1), requested_by=commander)
    with pytest.raises(PermissionDenied, match="SEV-1"):
        execution.action_override(actor=commander, run=action_run, reason="site down, nobody else awake")
    sev1 = incident_services.incident_declare(actor=commander, title="Down", severity=1, summary="")
    sev1.commander = commander
    sev1.save()
    run = start(make_runbook(action="k8s_scale", action_step=1), incident=sev1, actor=commander)
    action_run = awaiting_run(run.step_runs.get(order=1), requested_by=commander)
    with pytest.raises(PermissionDenied):
        execution.action_override(actor=sre, run=action_run, reason="I am not the commander here")
    with pytest.raises(ValidationError):
        execution.action_override(actor=commander, run=action_run, reason="short")
    execution.action_override(actor=commander, run=action_run, reason="site down, nobody else awake")
    action_run.refresh_from_db()
    assert action_run.status == "queued" and action_run.override_reason == "site down, nobody else awake"
    entry = AuditEntry.objects.get(action="runbooks.action_override")
    assert entry.after["reason"] == "site down, nobody else awake"
    assert TimelineEvent.objects.filter(incident=sev1, kind="remediation", text__contains="by override").exists()


def test_request_validates_params_and_the_allowlist_before_writing(make_user, settings):
    settings.RUNBOOK_ALLOWED_NAMESPACES = ["prod"]
    settings.RUNBOOK_ALLOWED_DEPLOYMENTS = ["prod/worker-*"]
    sre = make_user(Role.SRE)
    run = start(make_runbook(action="k8s_scale", action_step=1), actor=sre)
    step_run = StepRun.objects.select_related("step", "execution").get(execution=run, order=1)
    for data, message in [
        ({"namespace": "kube-system", "deployment": "worker-a", "replicas": "3"}, "not in RUNBOOK_ALLOWED_NAMESPACES"),
        ({"namespace": "prod", "deployment": "api", "replicas": "3"}, "not in RUNBOOK_ALLOWED_DEPLOYMENTS"),
        ({"namespace": "prod", "deployment": "worker-a", "replicas": "500"}, "less than or equal to 100"),
        ({"namespace": "prod", "deployment": "Bad_Name", "replicas": "3"}, "Not a Kubernetes name"),
    ]:
        with pytest.raises(ValidationError) as refused:
            execution.action_request(actor=sre, step_run=step_run, data=data)
        assert message in " ".join(refused.value.messages)
    assert ActionRun.objects.count() == 0


def test_http_action_host_allowlist(settings):
    from runbooks.actions import REGISTRY

    settings.RUNBOOK_ALLOWED_HOSTS = ["api.internal:8443", "127.0.0.1"]
    http = REGISTRY["http"]
    assert http.clean({"method": "POST", "url": "https://api.internal:8443/v1/webhooks/dlq/7/replay"})
    for url in ["https://api.internal/x", "https://evil.example/x", "file:///etc/passwd", "http://169.254.169.254/"]:
        with pytest.raises(ValidationError):
            http.clean({"method": "GET", "url": url})
    assert http.is_destructive({"method": "POST"}) and not http.is_destructive({"method": "GET"})


def test_run_check_action_records_a_result_now(make_user):
    from healthchecks.models import Check

    service = Service.objects.create(name="Heartbeat svc", slug="hb-svc")
    check = Check.objects.create(
        service=service, name="nightly", kind="heartbeat", config={}, interval_seconds=60, timeout_seconds=5
    )
    sre = make_user(Role.SRE)
    run = start(make_runbook(action="run_check", action_step=1), actor=sre)
    step_run = StepRun.objects.select_related("step", "execution").get(execution=run, order=1)
    action_run = execution.action_request(actor=sre, step_run=step_run, data={"check_id": str(check.pk)})
    assert action_run.status == "queued" and not action_run.destructive
    assert execution.perform_action(action_run.pk) == "succeeded"
    action_run.refresh_from_db()
    assert "nightly:" in action_run.output and action_run.progress == 100
    step_run.refresh_from_db()
    assert step_run.state == "done" and step_run.by == sre
    assert check.results.count() == 1
    assert execution.perform_action(action_run.pk) == "nothing to do: succeeded"  # a duplicate task
    assert timezone.now() >= action_run.finished_at
