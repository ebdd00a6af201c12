"""/metrics under real gunicorn with several workers (multiprocess mode), and
Celery task counters."""

import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from tests.processes import free_port, production_env

pytestmark = pytest.mark.slow

REQUESTS = 60
TOKEN = "metrics-" + secrets.token_hex(8)


def _get(url: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def gunicorn(transactional_db, tmp_path):
    port = free_port()
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    (multiproc / "counter_999999.db").write_bytes(b"stale file from a previous run")
    env = production_env(
        ALLOWED_HOSTS="127.0.0.1",
        HOST="127.0.0.1",
        PORT=str(port),
        WEB_CONCURRENCY="3",
        PROMETHEUS_MULTIPROC_DIR=str(multiproc),
        METRICS_TOKEN=TOKEN,
    )
    log = open(tmp_path / "gunicorn.log", "w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if _get(f"{base}/livez")[0] == 200:
                break
        except OSError:
            time.sleep(0.2)
    else:
        process.kill()
        log.seek(0)
        pytest.fail(f"gunicorn did not start:\n{log.read()}")
    yield base, multiproc, process, log
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    log.close()


def _samples(text: str, name: str) -> list:
    return [s for family in text_string_to_metric_families(text) for s in family.samples if s.name == name]


def test_metrics_sum_over_three_gunicorn_workers(gunicorn):
    base, multiproc, _process, log = gunicorn
    assert not (multiproc / "counter_999999.db").exists(), "master start empties the directory"
    # The readiness probe above made a few /livez requests of its own: count from here.
    _, before = _get(f"{base}/metrics", TOKEN)
    already = sum(s.value for s in _samples(before, "http_requests_total") if s.labels["view"] == "livez")

    # Readiness answered as soon as one worker was up; on a loaded machine the
    # others may still be booting, so send rounds until a second one served.
    sent, deadline = 0, time.monotonic() + 60
    while True:
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(lambda _: _get(f"{base}/livez")[0], range(REQUESTS)))
        assert statuses == [200] * REQUESTS
        sent += REQUESTS
        # Several workers really served them: one sample file per worker pid.
        pids = {re.match(r"counter_(\d+)\.db", f.name).group(1) for f in multiproc.glob("counter_*.db")}
        if len(pids) >= 2 or time.monotonic() > deadline:
            break
    assert len(pids) >= 2, f"expected requests spread over workers, files: {pids}"

    status, text = _get(f"{base}/metrics", TOKEN)
    assert status == 200
    livez = [s for s in _samples(text, "http_requests_total") if s.labels["view"] == "livez"]
    assert {(s.labels["method"], s.labels["status"]) for s in livez} == {("GET", "200")}
    assert sum(s.value for s in livez) == already + sent

    buckets = [s for s in _samples(text, "http_request_duration_seconds_bucket") if s.labels["view"] == "livez"]
    assert {s.labels["le"] for s in buckets} >= {"0.005", "0.1", "1.0", "+Inf"}
    count = [s for s in _samples(text, "http_request_duration_seconds_count") if s.labels["view"] == "livez"]
    assert sum(s.value for s in count) == already + sent

    # Access log: JSON lines carrying the request id gunicorn saw in the response.
    log.seek(0)
    access = [line for line in log.read().splitlines() if '"logger": "gunicorn.access"' in line]
    assert len(access) >= sent
    assert re.search(r'"request_id": "[0-9a-f]{32}"', access[-1])


def test_metrics_need_the_bearer_token_when_set(gunicorn):
    base, *_ = gunicorn
    assert _get(f"{base}/metrics")[0] == 401
    assert _get(f"{base}/metrics", "wrong-token")[0] == 401
    status, text = _get(f"{base}/metrics", TOKEN)
    assert status == 200
    assert "http_requests_total" in text


@pytest.mark.django_db
def test_celery_task_counters_after_a_task_runs(client):
    from opsconsole.tasks import verify_audit_chain

    def task_count(text: str) -> float:
        return sum(
            s.value
            for s in _samples(text, "celery_tasks_total")
            if s.labels == {"task": "opsconsole.tasks.verify_audit_chain", "state": "SUCCESS"}
        )

    before = task_count(client.get("/metrics").content.decode())
    result = verify_audit_chain.delay().get()
    text = client.get("/metrics").content.decode()

    assert result["intact"] is True
    assert task_count(text) == before + 1
    assert _samples(text, "celery_task_duration_seconds_count")
    assert [s.value for s in _samples(text, "audit_chain_intact")] == [1.0]


def test_verify_audit_task_is_routed_and_scheduled():
    from opsconsole.celery import app

    assert app.amqp.router.route({}, "opsconsole.tasks.verify_audit_chain")["queue"].name == "default"
    schedule = settings.CELERY_BEAT_SCHEDULE["verify-audit-chain"]
    assert schedule["task"] == "opsconsole.tasks.verify_audit_chain"
    assert app.tasks["opsconsole.tasks.verify_audit_chain"].time_limit


def test_gunicorn_config_reads_the_environment(tmp_path):
    env = {**os.environ, "PORT": "9123", "WEB_CONCURRENCY": "5"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    code = (
        "import runpy, os; c = runpy.run_path('gunicorn.conf.py'); "
        "print(c['bind'], c['workers'], os.environ['PROMETHEUS_MULTIPROC_DIR'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out[:2] == ["0.0.0.0:9123", "5"]
    assert Path(out[2]) == Path(settings.BASE_DIR) / "var" / "prometheus-multiproc"
