import datetime
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from checklists import tasks
from checklists.models import ChecklistRun, ChecklistTemplate, RunItem, Schedule
from opsconsole.models import AuditEntry
from opsconsole.roles import Role

pytestmark = pytest.mark.django_db


def test_demo_builds_the_five_seed_templates_idempotently():
    call_command("seed_demo", stdout=StringIO())
    names = set(ChecklistTemplate.objects.values_list("name", flat=True))
    assert {
        "Morning checklist",
        "Evening checklist",
        "Maintenance window",
        "Release deployment",
        "Environment promotion",
    } <= names
    evening = ChecklistTemplate.objects.get(name="Evening checklist")
    assert evening.offers_handoff and evening.items.filter(text="Hand off to on-call if needed").exists()
    release = ChecklistTemplate.objects.get(name="Release deployment")
    assert release.items.filter(section="Rollback Trigger").count() == 4
    schedules = {(s.template.name, s.time_of_day) for s in Schedule.objects.select_related("template")}
    assert schedules == {
        ("Morning checklist", datetime.time(8)),
        ("Evening checklist", datetime.time(18)),
    }
    assert all(s.days_of_week == "01234" for s in Schedule.objects.all())
    statuses = sorted(ChecklistRun.objects.values_list("status", flat=True))
    assert statuses == ["completed", "open"]
    counts = (
        ChecklistTemplate.objects.count(),
        ChecklistRun.objects.count(),
        RunItem.objects.count(),
    )
    call_command("seed_demo", stdout=StringIO())
    assert (
        ChecklistTemplate.objects.count(),
        ChecklistRun.objects.count(),
        RunItem.objects.count(),
    ) == counts


def test_beat_schedule_and_routes_name_the_tasks():
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {
        "checklists.tasks.create_due_runs",
        "checklists.tasks.mark_missed_runs",
        "checklists.tasks.refresh_automatic_items",
    } <= scheduled


def test_tasks_are_safe_to_run_twice(make_template, make_schedule):
    now = timezone.now()
    make_schedule(
        make_template(2),
        at=(now - datetime.timedelta(minutes=5)).time().replace(microsecond=0),
        due=datetime.timedelta(hours=1),
    )
    assert tasks.create_due_runs.delay().get() == 1
    assert tasks.create_due_runs.delay().get() == 0
    ChecklistRun.objects.update(due_at=now - datetime.timedelta(minutes=1))
    assert tasks.mark_missed_runs.delay().get() == 1
    assert tasks.mark_missed_runs.delay().get() == 0
    assert tasks.refresh_automatic_items.delay().get() == 0


def test_metrics_expose_runs_gauge_and_tick_counter(
    client, make_template, make_user, django_capture_on_commit_callbacks
):
    from checklists import services

    sre = make_user(Role.SRE)
    run = services.run_start(actor=sre, template=make_template(2))

    def ticked() -> float:
        body = client.get(reverse("metrics")).content.decode()
        lines = [
            line
            for line in body.splitlines()
            if line.startswith('opsconsole_checklist_items_ticked_total{by="person"}')
        ]
        return float(lines[0].split()[-1]) if lines else 0.0

    before = ticked()
    client.force_login(sre)
    with django_capture_on_commit_callbacks(execute=True):  # counted only once committed
        client.post(reverse("checklists:item_tick", args=[run.pk, run.items.first().pk]))
    client.logout()
    body = client.get(reverse("metrics")).content.decode()
    assert 'opsconsole_checklist_runs{status="open"} 1.0' in body
    assert 'opsconsole_checklist_runs{status="missed"} 0.0' in body
    assert ticked() == before + 1


def test_admin_pages_load_and_edits_are_audited(client, make_user, make_template):
    admin = make_user(Role.ADMIN, is_staff=True, is_superuser=True)
    client.force_login(admin)
    template = make_template(2)
    for name in ("checklisttemplate", "schedule", "checklistrun"):
        assert client.get(reverse(f"admin:checklists_{name}_changelist")).status_code == 200
    response = client.post(
        reverse("admin:checklists_checklisttemplate_change", args=[template.pk]),
        {
            "name": "Renamed in admin",
            "description": "",
            "is_active": "on",
            "items-TOTAL_FORMS": "0",
            "items-INITIAL_FORMS": "0",
            "schedules-TOTAL_FORMS": "0",
            "schedules-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302
    assert AuditEntry.objects.filter(action="checklists.checklisttemplate.admin_change").exists()
