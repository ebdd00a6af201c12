"""JSON logs: the line shape, the request's id and user, and the id of the
request that queued a Celery task, seen in a real worker's logs."""

import io
import json
import logging
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import reverse
from prometheus_client.multiprocess import MultiProcessCollector

from opsconsole.middleware import RequestIdMiddleware
from opsconsole.roles import Role
from tests.processes import production_env

FIELDS = ["timestamp", "level", "logger", "message", "request_id", "user_id"]


@pytest.fixture
def json_lines():
    """The JSON lines the configured root handler would write (same formatter
    and filters as settings.LOGGING), collected from this point on."""
    configured = logging.getLogger().handlers[0]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(configured.formatter)
    for log_filter in configured.filters:
        handler.addFilter(log_filter)
    logging.getLogger().addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logging.getLogger().removeHandler(handler)


def test_json_line_shape(json_lines):
    logger = logging.getLogger("opsconsole.test")
    logger.warning("disk at %s%%", 91, extra={"mount": "/var"})
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError:
        logger.exception("it failed")

    first, second = json_lines()
    assert list(first)[: len(FIELDS)] == FIELDS
    assert first["level"] == "WARNING" and first["logger"] == "opsconsole.test"
    assert first["message"] == "disk at 91%"
    assert first["mount"] == "/var"
    assert first["timestamp"].endswith("+00:00") and "T" in first["timestamp"]
    assert first["request_id"] is None and first["user_id"] is None
    assert second["level"] == "ERROR"
    assert "RuntimeError: boom\nsecond line" in second["exc_info"]


@pytest.mark.django_db
def test_request_logs_carry_its_request_id_and_user(client_as, json_lines):
    client = client_as(Role.SRE)
    request_id = f"req-{uuid.uuid4().hex}"

    response = client.post(
        reverse("profile"),
        {"first_name": "Sam", "last_name": "", "email": "sam@example.com", "timezone": "UTC"},
        headers={"X-Request-ID": request_id},
    )

    assert response.status_code == 302
    assert response["X-Request-ID"] == request_id
    audit_lines = [line for line in json_lines() if line["logger"] == "opsconsole.audit"]
    assert len(audit_lines) == 1
    line = audit_lines[0]
    assert line["message"] == f"user.profile_update by {client.user.username}"
    assert line["request_id"] == request_id
    assert line["user_id"] == client.user.pk
    assert line["level"] == "INFO"


@pytest.mark.django_db
def test_a_request_without_an_id_gets_one_and_django_events_carry_it(client, json_lines):
    response = client.get("/no-such-page/", headers={"X-Request-ID": "bad id with spaces"})

    generated = response["X-Request-ID"]
    assert len(generated) == 32 and generated != "bad id with spaces"
    not_found = [line for line in json_lines() if line["logger"] == "django.request"]
    assert not_found and not_found[0]["message"] == "Not Found: /no-such-page/"
    assert not_found[0]["request_id"] == generated
    assert "request" not in not_found[0]


def _worker_env(multiproc: Path) -> dict[str, str]:
    return production_env(PROMETHEUS_MULTIPROC_DIR=str(multiproc))


@pytest.fixture
def celery_worker_process(transactional_db, tmp_path, redis_client):
    """A real Celery worker (prefork, like production) on the test broker."""
    from opsconsole.celery import app

    redis_client.delete("default")  # no leftovers of an interrupted earlier run
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    log_path = tmp_path / "worker.log"
    log = open(log_path, "w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "opsconsole",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            "1",
            "--queues",
            "default",
            "--without-gossip",
            "--without-mingle",
            "--hostname",
            f"test-{uuid.uuid4().hex[:8]}@%h",
        ],
        cwd=settings.BASE_DIR,
        env=_worker_env(multiproc),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    app.conf.task_always_eager = False  # the autouse fixture restores it
    yield process, log_path, multiproc
    process.terminate()
    process.wait(timeout=30)
    log.close()


def _wait_for_line(log_path: Path, predicate, timeout: float = 40.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for raw in log_path.read_text().splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if predicate(line):
                return line
        time.sleep(0.3)
    pytest.fail(f"no matching log line from the worker:\n{log_path.read_text()[-4000:]}")


@pytest.mark.slow
def test_task_queued_from_a_request_logs_that_requests_id(celery_worker_process):
    from opsconsole.tasks import verify_audit_chain

    _process, log_path, multiproc = celery_worker_process
    request_id = f"req-{uuid.uuid4().hex}"

    def view(request):
        verify_audit_chain.delay()
        return HttpResponse("queued")

    response = RequestIdMiddleware(view)(RequestFactory().post("/", headers={"X-Request-ID": request_id}))
    assert response["X-Request-ID"] == request_id

    task_line = _wait_for_line(log_path, lambda line: line.get("logger") == "opsconsole.tasks")
    assert task_line["message"] == "Audit log intact: 0 rows verified"
    assert task_line["request_id"] == request_id
    done = _wait_for_line(
        log_path,
        lambda line: line.get("logger") == "celery.app.trace" and "succeeded" in line["message"],
    )
    assert done["request_id"] == request_id

    # The worker's task counters, from its multiprocess sample files.
    merged = MultiProcessCollector.merge([str(p) for p in multiproc.glob("*.db")])
    samples = [s for family in merged for s in family.samples if s.name == "celery_tasks_total"]
    assert [(s.labels, s.value) for s in samples] == [
        ({"task": "opsconsole.tasks.verify_audit_chain", "state": "SUCCESS"}, 1.0)
    ]


@pytest.mark.django_db
def test_an_eager_task_keeps_the_requests_id_for_the_rest_of_the_request(json_lines):
    from opsconsole import audit
    from opsconsole.tasks import verify_audit_chain

    def view(request):
        verify_audit_chain.delay()  # eager in tests
        audit.record(None, "test.after_task")
        return HttpResponse("ok")

    RequestIdMiddleware(view)(RequestFactory().post("/", headers={"X-Request-ID": "req-eager-1"}))

    lines = {line["logger"]: line for line in json_lines()}
    assert lines["opsconsole.tasks"]["request_id"] == "req-eager-1"
    assert lines["opsconsole.audit"]["request_id"] == "req-eager-1"
