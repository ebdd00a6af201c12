"""The escalation sweep on a real Celery worker killed with SIGKILL mid-step."""

import datetime
import os
import signal
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from incidents import services as incidents
from notifications.models import Delivery
from oncall.models import EscalationStep, IncidentEscalation
from oncall.tasks import escalate_due
from opsconsole import audit
from opsconsole.celery import app
from opsconsole.models import AuditHead
from tests.oncall.factories import seed_policy
from tests.processes import start_celery_worker, subprocess_database_url, wait_until

ROOT = Path(__file__).resolve().parents[2]


def _no_other_session() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0] == 0


def _blocked_on_the_audit_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_escalation_pages_that_level_exactly_once(make_user, worker_id_suffix):
    """The sweep is stopped inside its transaction (after claiming level 2,
    before committing: this test holds the audit log's head rows, which the
    step's audit entry waits for). kill -9 the worker there: PostgreSQL
    rolls the step back. A new worker pages level 2 once, and only once."""
    ladder = seed_policy(make_user)
    incident = incidents.incident_declare(
        actor=ladder["declarer"], title="API down", severity=1, services=[ladder["service"]]
    )
    state = IncidentEscalation.objects.get(incident=incident)
    # Level 2 is due now: the worker runs on the real clock, so move the due time, not the clock.
    IncidentEscalation.objects.filter(pk=state.pk).update(next_due_at=timezone.now() - datetime.timedelta(minutes=1))
    queue = f"oncall-kill{worker_id_suffix}"
    worker = start_celery_worker(queue)
    app.conf.task_always_eager = False
    # Another session holds every audit stream's head row: every audit append waits for one.
    holder = psycopg.connect(subprocess_database_url())
    try:
        audit.ensure_heads()  # every stream's head exists, so none is created past the lock
        holder.execute(f"SELECT position FROM {AuditHead._meta.db_table} FOR UPDATE")
        escalate_due.apply_async(queue=queue)
        wait_until(_blocked_on_the_audit_lock, what="the worker to reach the step's audit entry")
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        holder.rollback()
        holder.close()
        if worker.poll() is None:
            worker.kill()
    # Killed inside the transaction: nothing of level 2 exists.
    wait_until(_no_other_session, what="the killed worker's session to roll back")
    assert list(EscalationStep.objects.filter(escalation=state).values_list("position", flat=True)) == [1]
    assert IncidentEscalation.objects.get(pk=state.pk).next_position == 2

    second = start_celery_worker(queue)
    try:
        escalate_due.apply_async(queue=queue)
        wait_until(
            lambda: EscalationStep.objects.filter(escalation=state, position=2).exists(),
            what="the new worker to page level 2",
        )
        escalate_due.apply_async(queue=queue)  # a duplicate sweep: still once
        escalate_due.apply_async(queue=queue)
        time.sleep(3)
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(20)
        except subprocess.TimeoutExpired:
            second.kill()
        app.conf.task_always_eager = True
    assert list(EscalationStep.objects.filter(escalation=state).values_list("position", flat=True)) == [1, 2]
    paged_lead = Delivery.objects.filter(event="incident.escalated", target="lead@example.com")
    assert paged_lead.count() == 1
    assert IncidentEscalation.objects.get(pk=state.pk).current_position == 2
