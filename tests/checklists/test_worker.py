"""Checklist slots on a real Celery worker killed with SIGKILL mid-task."""

import datetime
import os
import signal
import subprocess
import time

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from checklists.models import ChecklistRun, RunItem
from checklists.tasks import create_due_runs
from opsconsole.celery import app
from opsconsole.models import AuditEntry
from tests.processes import start_celery_worker, subprocess_database_url, wait_until


def _sessions_waiting_on_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def _no_other_session() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0] == 0


def _stop(worker: subprocess.Popen) -> None:
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(20)
    except subprocess.TimeoutExpired:
        worker.kill()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_while_creating_a_slot_run_loses_no_slot_and_doubles_none(
    make_template, make_schedule, worker_id_suffix
):
    """create_due_runs is stopped inside the slot's transaction (the run row
    inserted, its items waiting on a SHARE lock this test holds on the items
    table). kill -9 the worker there: PostgreSQL rolls the slot back, nothing
    half-made stays. A new worker creates the slot's run once, with every
    item and one audit entry, however many times the task is sent."""
    template = make_template(n_items=4)
    # A slot that came a minute ago (UTC, every day), due within two hours.
    slot_time = (timezone.now() - datetime.timedelta(minutes=1)).replace(second=0, microsecond=0)
    schedule = make_schedule(template, at=slot_time.time(), due=datetime.timedelta(hours=2))
    queue = f"checklists-kill{worker_id_suffix}"
    worker = start_celery_worker(queue)
    app.conf.task_always_eager = False
    holder = psycopg.connect(subprocess_database_url())
    try:
        # Blocks INSERTs into the items table (not the run's own INSERT) until rollback.
        holder.execute(f"LOCK TABLE {RunItem._meta.db_table} IN SHARE MODE")
        create_due_runs.apply_async(queue=queue)
        wait_until(_sessions_waiting_on_a_lock, what="the worker to reach the slot run's items")
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        holder.rollback()
        holder.close()
        if worker.poll() is None:
            worker.kill()
    wait_until(_no_other_session, what="the killed worker's session to roll back")
    # Killed inside the transaction: no run, no item, no audit entry of the slot.
    assert not ChecklistRun.objects.filter(schedule=schedule).exists()
    assert not RunItem.objects.exists()
    assert not AuditEntry.objects.filter(action__startswith="checklists.run").exists()

    second = start_celery_worker(queue, pool="prefork", concurrency=2)
    try:
        # Beat sends the task again on its next tick; duplicates race on two processes.
        for _ in range(4):
            create_due_runs.apply_async(queue=queue)
        wait_until(
            lambda: ChecklistRun.objects.filter(schedule=schedule).exists(),
            what="the new worker to create the slot's run",
        )
        time.sleep(3)
    finally:
        _stop(second)
        app.conf.task_always_eager = True
    [run] = ChecklistRun.objects.filter(schedule=schedule)
    assert run.slot == slot_time
    assert RunItem.objects.filter(run=run).count() == 4
    assert AuditEntry.objects.filter(action__startswith="checklists.run", target_id=str(run.pk)).count() == 1
