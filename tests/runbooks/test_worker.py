"""Actions on a real Celery worker (Redis broker, eager off), whose process is
killed (SIGKILL) mid-action: the worker starts a new process, the message is
redelivered (acks_late + reject_on_worker_lost), and the action is still
applied exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from django.utils import timezone

from opsconsole.celery import app
from runbooks import tasks
from runbooks.models import ActionRun
from tests.healthchecks.targets import HttpTarget
from tests.processes import production_env, start_celery_worker, wait_until
from tests.runbooks.factories import make_runbook, start
from tests.runbooks.kube import FakeCluster

ROOT = Path(__file__).resolve().parents[2]


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


class Worker:
    """celery worker --pool prefork --concurrency 1 on a queue of this test's own."""

    def __init__(self, queue: str, **env: str):
        self.process = start_celery_worker(queue, pool="prefork", env=production_env(CELERY_BROKER_URL="", **env))

    def kill_child(self) -> int:
        """SIGKILL the pool process that runs the task (the main process starts another)."""
        [child] = _children(self.process.pid)
        os.kill(child, signal.SIGKILL)
        return child

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def _queued(runbook_action: str, params: dict) -> ActionRun:
    execution = start(make_runbook(action=runbook_action, action_step=1))
    return ActionRun.objects.create(
        step_run=execution.step_runs.get(order=1),
        action=runbook_action,
        params=params,
        destructive=True,
        dry_run="test",
        status=ActionRun.Status.QUEUED,
        requested_at=timezone.now(),
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_killed_worker_never_sends_a_non_idempotent_request_twice(worker_id_suffix):
    hits = []

    def replay(handler):
        hits.append(handler.headers.get("Idempotency-Key"))
        return (200, "application/json", '{"replayed": 1}', 20)  # slow: the worker is killed meanwhile

    target = HttpTarget({"/v1/webhooks/dlq/7/replay": replay})
    queue = f"rb-kill-http{worker_id_suffix}"
    run = _queued("http", {"method": "POST", "url": target.url("/v1/webhooks/dlq/7/replay")})
    worker = Worker(queue, RUNBOOK_ALLOWED_HOSTS="127.0.0.1")
    app.conf.task_always_eager = False
    try:
        tasks.perform_action.apply_async((run.pk,), queue=queue)
        wait_until(lambda: hits, 60, "the worker never sent the request")
        worker.kill_child()
        wait_until(
            lambda: ActionRun.objects.get(pk=run.pk).status == "interrupted",
            60,
            "the redelivered task did not settle the run",
        )
        time.sleep(1)
    finally:
        app.conf.task_always_eager = True
        worker.stop()
        target.close()
    run.refresh_from_db()
    assert hits == [str(run.idempotency_key)]  # one request, carrying the step execution's key
    assert run.attempts == 2  # delivered twice, applied once
    assert "NOT applied again" in run.output


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_killed_worker_verifies_a_scale_instead_of_patching_again(worker_id_suffix, tmp_path):
    cluster = FakeCluster(tmp_path, replicas=3)
    original = cluster._scale

    def slow_scale(handler):
        answer = original(handler)
        return answer[:3] + (20 if handler.command == "PATCH" else 0,)

    cluster.target.server.routes["/apis/apps/v1/namespaces/prod/deployments/worker/scale"] = slow_scale
    queue = f"rb-kill-k8s{worker_id_suffix}"
    run = _queued("k8s_scale", {"namespace": "prod", "deployment": "worker", "replicas": 5})
    worker = Worker(
        queue,
        RUNBOOK_KUBECONFIG=str(cluster.kubeconfig),
        RUNBOOK_ALLOWED_NAMESPACES="prod",
        RUNBOOK_ALLOWED_DEPLOYMENTS="prod/worker",
    )
    app.conf.task_always_eager = False
    try:
        tasks.perform_action.apply_async((run.pk,), queue=queue)
        wait_until(lambda: cluster.writes(), 60, "the worker never patched the deployment")
        worker.kill_child()
        wait_until(lambda: ActionRun.objects.get(pk=run.pk).is_finished, 60, "the redelivered task did not settle")
    finally:
        app.conf.task_always_eager = True
        worker.stop()
        cluster.close()
    run.refresh_from_db()
    patches = [w for w in cluster.writes() if w[0] == "PATCH"]
    assert len(patches) == 1 and cluster.replicas == 5
    assert run.status == "succeeded" and run.attempts == 2
    assert "the change is in place, not applied again" in run.output
