"""A real Celery worker (Redis broker, eager off) runs a dispatched batch."""

from __future__ import annotations

import time

import pytest
from celery.contrib.testing.worker import start_worker

from healthchecks import tasks
from healthchecks.models import Check, CheckResult
from opsconsole.celery import app
from tests.healthchecks.factories import make_check, make_service
from tests.healthchecks.targets import HttpTarget, free_port, json_route


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_runs_a_dispatched_batch_from_a_pinned_queue(worker_id_suffix):
    queue = f"hc-test{worker_id_suffix}"
    target = HttpTarget({"/healthz": json_route({"status": "healthy"})})
    service = make_service("Checkout API")
    healthy = make_check(
        service,
        name="healthz",
        kind="http",
        queue=queue,
        config={"url": target.url("/healthz"), "json_path": "status", "json_equals": "healthy"},
    )
    down = make_check(
        service,
        name="down",
        kind="http",
        queue=queue,
        config={"url": f"http://127.0.0.1:{free_port()}/"},
    )
    app.conf.task_always_eager = False
    try:
        with start_worker(
            app,
            pool="solo",
            perform_ping_check=False,
            queues=[queue],
            loglevel="WARNING",
            shutdown_timeout=10,
        ):
            assert tasks.dispatch_due_checks() == 2
            deadline = time.monotonic() + 30
            while CheckResult.objects.count() < 2:
                assert time.monotonic() < deadline, "the worker did not run the batch"
                time.sleep(0.2)
    finally:
        app.conf.task_always_eager = True
        target.close()
    healthy.refresh_from_db()
    down.refresh_from_db()
    assert (healthy.state, down.state) == (Check.State.OK, Check.State.CRITICAL)
    assert down.last_message == "connection refused"
    assert healthy.lease_token is None and healthy.next_due_at > healthy.last_checked_at
    assert tasks.dispatch_due_checks() == 0  # nothing due until the interval passes
