"""A real Celery worker (Redis broker, eager off) runs a dispatched batch."""

from __future__ import annotations

import time

import pytest
from celery.contrib.testing.worker import start_worker

from healthchecks import tasks
from healthchecks.models import Check, CheckResult
from opsconsole.celery import app
from tests.healthchecks.factories import make_check, make_service
from tests.healthchecks.targets import HttpTarget, json_route
from tests.processes import free_port, start_celery_worker, wait_until


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


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_batch_loses_no_check(worker_id_suffix, settings):
    """kill -9 a real worker while its batch is probing: nothing is written,
    and once the lease expires the check is claimed and run again."""
    import signal

    from healthchecks import services

    queue = f"hc-kill{worker_id_suffix}"
    target = HttpTarget({"/slow": json_route({"status": "healthy"}, delay=20)})
    check = make_check(kind="http", queue=queue, timeout_seconds=15, config={"url": target.url("/slow")})
    worker = start_celery_worker(queue)
    app.conf.task_always_eager = False
    try:
        assert tasks.dispatch_due_checks() == 1
        wait_until(lambda: target.server.requests, what="the worker's probe to reach the target")
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        app.conf.task_always_eager = True
        if worker.poll() is None:
            worker.kill()
        target.close()
    check.refresh_from_db()
    assert check.lease_token is not None and not CheckResult.objects.exists()
    # Within the lease nobody sends it again; after it (timeout + margin) it is due.
    assert services.claim_due_checks() == []
    [claim] = services.claim_due_checks(now=check.lease_until)
    assert claim.check_ids == [check.pk]
