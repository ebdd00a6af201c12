"""Runbook pages: list/search, detail, edit, history, import, executions; constant query counts."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from incidents import services as incident_services
from opsconsole.roles import Role
from runbooks import execution
from runbooks.models import Runbook, StepRun
from tests.runbooks.factories import awaiting_run, make_runbook, start

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


@pytest.mark.parametrize("count", [3, 60])
def test_list_and_search_in_constant_queries(client_as, django_assert_max_num_queries, count):
    client = client_as(Role.VIEWER)
    for n in range(count):
        make_runbook(f"Runbook number {n}", steps=2)
    with django_assert_max_num_queries(12):
        page = client.get(reverse("runbooks:index"))
    assert page.status_code == 200 and page.content.decode().count('data-testid="runbook-row"') == count
    with django_assert_max_num_queries(12):
        found = client.get(reverse("runbooks:index"), {"q": "number 7"}, headers=HTMX)
    assert 'id="rb-results"' in found.content.decode() and "<html" not in found.content.decode()


def test_detail_shows_steps_with_copy_buttons_and_no_inline_script(client_as):
    client = client_as(Role.SRE)
    runbook = make_runbook("Copyable", steps=3)
    body = client.get(reverse("runbooks:detail", args=[runbook.pk])).content.decode()
    assert body.count('data-testid="step"') == 3 and 'data-copy="cmd-' in body
    assert "<strong>1</strong>" in body  # Markdown instructions rendered
    assert "runbooks/runbooks.js" in body and "<script>" not in body and "style=" not in body


def test_edit_creates_a_version_and_history_lists_it(client_as):
    client = client_as(Role.SRE)
    runbook = make_runbook("Editable", steps=1)
    data = {
        "title": "Editable",
        "symptoms": "slow",
        "tags": "queue, k8s",
        "change_note": "second step",
        "base_version": "1",
        "steps-TOTAL_FORMS": "2",
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "500",
        "steps-0-title": "One",
        "steps-1-title": "Two",
        "steps-1-action": "k8s_scale",
        "steps-1-action_params": '{"namespace": "prod"}',
    }
    response = client.post(reverse("runbooks:edit", args=[runbook.pk]), data)
    assert response.status_code == 302
    runbook.refresh_from_db()
    assert runbook.current_version.number == 2 and runbook.tags == ["queue", "k8s"]
    assert runbook.current_version.steps.get(order=2).action_params == {"namespace": "prod"}
    page = client.get(reverse("runbooks:detail", args=[runbook.pk])).content.decode()
    assert "<code>namespace=prod</code>" in page  # the parameters as written, not a Python dict
    history = client.get(reverse("runbooks:history", args=[runbook.pk])).content.decode()
    assert history.count('data-testid="version-row"') == 2 and "second step" in history
    old = client.get(reverse("runbooks:version", args=[runbook.pk, 1])).content.decode()
    assert "Step 1" in old and "Two" not in old


def test_bad_edits_are_form_errors_and_change_nothing(client_as):
    client = client_as(Role.SRE)
    runbook = make_runbook("Guarded", steps=1)
    base = {
        "title": "Guarded",
        "base_version": "1",
        "steps-TOTAL_FORMS": "1",
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "500",
        "steps-0-title": "x",
    }
    bad_json = client.post(reverse("runbooks:edit", args=[runbook.pk]), base | {"steps-0-action_params": "[1"})
    assert bad_json.status_code == 200 and "Not JSON" in bad_json.content.decode()
    stale = client.post(reverse("runbooks:edit", args=[runbook.pk]), base | {"base_version": "0"})
    assert stale.status_code == 200 and "while you were editing" in stale.content.decode()
    assert runbook.versions.count() == 1


def test_upload_form_reports_and_refuses_binaries(client_as):
    client = client_as(Role.SRE)
    doc = "## Purge\r\n\r\n1. Arrêter\r\n2. Purger\r\n\r\n## Matin\r\n\r\n- [ ] Café\r\n".encode("cp1252")
    report = client.post(reverse("runbooks:import"), {"file": SimpleUploadedFile("ops.md", doc)}).content.decode()
    assert "Purge" in report and "created" in report and "Matin" in report
    assert Runbook.objects.filter(title="Purge").exists()
    again = client.post(reverse("runbooks:import"), {"file": SimpleUploadedFile("ops.md", doc)}).content.decode()
    assert "unchanged" in again
    binary = client.post(reverse("runbooks:import"), {"file": SimpleUploadedFile("x.png", b"\x89PNG\x00\x00" * 9)})
    assert binary.status_code == 200 and "looks like a binary file" in binary.content.decode()


@pytest.mark.parametrize("steps", [5, 200])
def test_execution_page_constant_queries(client_as, django_assert_max_num_queries, steps, make_user):
    client = client_as(Role.SRE)
    run = start(make_runbook(steps=steps, action="k8s_scale", action_step=2))
    for step_run in StepRun.objects.filter(execution=run, order__in=[1, 3]):
        execution.step_mark(actor=client.user, step_run_id=step_run.pk, state="done")
    awaiting_run(run.step_runs.get(order=2), requested_by=make_user(Role.SRE))
    with django_assert_max_num_queries(16):
        page = client.get(reverse("runbooks:execution", args=[run.pk]))
    body = page.content.decode()
    assert body.count('data-testid="step-run"') == steps and 'data-testid="approve"' in body
    with django_assert_max_num_queries(16):
        poll = client.get(reverse("runbooks:execution", args=[run.pk]), {"poll": "1"}, headers=HTMX)
    assert 'id="rb-execution"' in poll.content.decode() and "<html" not in poll.content.decode()


def test_marking_and_approving_through_htmx(client_as, make_user):
    requester = make_user(Role.SRE)
    run = start(make_runbook(steps=2, action="k8s_scale", action_step=2), actor=requester)
    action_run = awaiting_run(run.step_runs.get(order=2), requested_by=requester)
    client = client_as(Role.SRE)
    marked = client.post(reverse("runbooks:step_mark", args=[run.pk, 1]), {"state": "done"}, headers=HTMX)
    assert marked.status_code == 200 and 'data-state="done"' in marked.content.decode()
    refused = client.post(reverse("runbooks:step_mark", args=[run.pk, 2]), {"state": "skipped"}, headers=HTMX)
    assert "Say why" in refused.content.decode()
    approved = client.post(reverse("runbooks:action_decide", args=[run.pk, action_run.pk, "approve"]), headers=HTMX)
    assert approved.status_code == 200
    action_run.refresh_from_db()
    assert action_run.status == "queued" and action_run.approved_by == client.user


def test_restricted_incident_executions_are_hidden(client_as, make_user):
    manager = make_user(Role.MANAGER)
    incident = incident_services.incident_declare(actor=manager, title="Breach", severity=1, restricted=True)
    run = start(make_runbook(), incident=incident, actor=manager)
    client = client_as(Role.SRE)
    assert client.get(reverse("runbooks:execution", args=[run.pk])).status_code == 404
    assert "Breach" not in client.get(reverse("dashboard")).content.decode()


def test_incident_page_suggests_runbooks_by_service_and_starts_one(client_as):
    from opsconsole.models import Service

    client = client_as(Role.SRE)
    queue = Service.objects.create(name="Queue", slug="queue")
    runbook = make_runbook("Messenger Queue Backlog", services=[queue])
    incident = incident_services.incident_declare(actor=client.user, title="Queue stuck", severity=2, services=[queue])
    page = client.get(reverse("incidents:detail", args=[incident.reference])).content.decode()
    assert 'data-testid="incident-runbooks"' in page and "Messenger Queue Backlog" in page
    response = client.post(reverse("runbooks:start", args=[runbook.pk]), {"incident": incident.reference})
    assert response.status_code == 302
    run = runbook.executions.get()
    assert run.incident == incident
    page = client.get(reverse("incidents:detail", args=[incident.reference])).content.decode()
    assert f"/runbooks/executions/{run.pk}/" in page
