"""One Celery beat at a time (opsconsole/beat_lock.py), on the test Redis,
and the worker's own /metrics endpoint (opsconsole/worker_metrics.py)."""

import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest
import redis
from django.conf import settings

from opsconsole import metrics, worker_metrics
from opsconsole.beat_lock import KEY, BeatLock
from tests.processes import free_port, production_env, start_celery_worker, wait_until


@pytest.fixture
def key():
    name = f"test-beat-lock-{uuid.uuid4().hex}"
    yield name
    redis.Redis.from_url(settings.REDIS_URL).delete(name)


def test_a_second_beat_waits_until_the_first_releases(key):
    first, second = BeatLock(settings.REDIS_URL, key=key), BeatLock(settings.REDIS_URL, key=key)
    second.identity = "other-host:2"
    assert first.acquire(blocking=False)
    assert first.holder() == first.identity
    assert not second.acquire(blocking=False)
    started = time.monotonic()
    assert not second.acquire(timeout=1.5)  # polls once a second
    assert time.monotonic() - started >= 0.9
    first.release()
    assert second.acquire(blocking=False)
    assert second.holder() == "other-host:2"
    second.release()


def test_the_holder_keeps_the_lock_alive_and_a_dead_one_is_replaced(key):
    alive = BeatLock(settings.REDIS_URL, key=key, ttl=0.9)
    waiting = BeatLock(settings.REDIS_URL, key=key, ttl=0.9)
    assert alive.acquire(blocking=False)
    alive.keep_alive()
    assert not waiting.acquire(timeout=2.0)  # past two TTLs: renewed meanwhile
    alive._stop.set()  # the process froze or died: no more renewals
    alive._thread.join()
    assert waiting.acquire(timeout=3.0)
    waiting.release()


def test_a_beat_that_lost_its_lock_stops(key):
    lost = threading.Event()
    holder = BeatLock(settings.REDIS_URL, key=key, ttl=0.6, on_lost=lost.set)
    assert holder.acquire(blocking=False)
    holder.keep_alive()
    holder.client.set(key, "someone-else:9")  # another beat took over
    assert lost.wait(3.0)
    assert holder.holder() == "someone-else:9"  # and it was not stolen back


def _beat(tmp_path, name: str) -> subprocess.Popen:
    env = production_env(CELERY_BROKER_URL="memory://", STATIC_ROOT=str(tmp_path / "static"))
    log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "opsconsole",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(tmp_path / f"{name}-schedule"),
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _wait_for(path, text: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if text in path.read_text():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_two_real_beats_one_ticks_the_other_waits_then_takes_over(tmp_path):
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(KEY)
    first = _beat(tmp_path, "first")
    second = None
    try:
        assert _wait_for(tmp_path / "first.log", "holds the beat lock", 60), (tmp_path / "first.log").read_text()
        second = _beat(tmp_path, "second")
        assert _wait_for(tmp_path / "second.log", "another celery beat holds the beat lock", 60)
        time.sleep(2)
        second_log = (tmp_path / "second.log").read_text()
        assert "holds the beat lock as" not in second_log and "Sending due task" not in second_log
        first.send_signal(signal.SIGTERM)  # a rollout: the lock is handed over, not left to expire
        first.wait(timeout=30)
        assert _wait_for(tmp_path / "second.log", "holds the beat lock as", 15), (tmp_path / "second.log").read_text()
        assert client.get(KEY).decode().endswith(f":{second.pid}")
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=30)
        client.delete(KEY)


def test_worker_metrics_endpoint_needs_the_token(settings):
    settings.METRICS_TOKEN = "worker-token"
    metrics.CELERY_TASKS.labels(task="opsconsole.tasks.example", state="FAILURE").inc()
    port = free_port()
    server = worker_metrics.serve(port, host="127.0.0.1")
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert refused.value.code == 401
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/metrics", headers={"Authorization": "Bearer worker-token"}
        )
        body = urllib.request.urlopen(request, timeout=5).read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert 'celery_tasks_total{state="FAILURE",task="opsconsole.tasks.example"}' in body
    assert "probe_success" not in body  # database figures come from the web pods only


def _scrape(port: int, token: str) -> str | None:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {token}"})
    try:
        return urllib.request.urlopen(request, timeout=5).read().decode()
    except OSError:
        return None


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_prefork_worker_serves_its_pool_s_task_counters(tmp_path):
    """As on Kubernetes: CELERY_METRICS_PORT set, the pool's processes write
    samples to the pod's own folder, the worker's main process serves them."""
    from opsconsole.celery import app
    from opsconsole.tasks import run_watchdog

    queue, port = f"worker-metrics-{uuid.uuid4().hex[:8]}", free_port()
    env = production_env(
        CELERY_METRICS_PORT=str(port), PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "samples"), METRICS_TOKEN="pod-token"
    )
    worker = start_celery_worker(queue, pool="prefork", concurrency=2, env=env)
    app.conf.task_always_eager = False  # the suite runs tasks eagerly; this one goes to the worker
    try:
        wait_until(lambda: _scrape(port, "pod-token") is not None, timeout=90, what="the worker's /metrics")
        run_watchdog.apply_async(queue=queue)
        counted = 'celery_tasks_total{state="SUCCESS",task="opsconsole.tasks.run_watchdog"} 1.0'
        body = wait_until(
            lambda: (text := _scrape(port, "pod-token")) and counted in text and text,
            timeout=60,
            what="the task counted",
        )
    finally:
        app.conf.task_always_eager = True
        worker.terminate()
        worker.wait(timeout=30)
    assert "opsconsole_watchdog_last_run_timestamp_seconds" in body
    assert "probe_success" not in body  # database figures come from the web pods only
