"""Bounded database connections under real gunicorn: a burst of webhook
deliveries larger than the pool gets only 2xx or 503 + Retry-After (never
500), PostgreSQL never sees more connections than the pools allow, and
every delivery a retrying sender (Alertmanager) gets through is stored once.
A database that is down answers 503 + Retry-After too."""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from bench.servers import free_port, gunicorn, http
from incidents.models import AlertReceipt, Incident
from opsconsole.models import ApiToken
from opsconsole.roles import Role
from tests.processes import production_env

pytestmark = [pytest.mark.slow]

BURST = 200
WORKERS, THREADS, POOL = 2, 8, 2


def _payload(group: int) -> bytes:
    return json.dumps(
        {
            "version": "4",
            "groupKey": f'{{}}:{{alertname="Burst{group}"}}',
            "status": "firing",
            "receiver": "console",
            "groupLabels": {"alertname": f"Burst{group}"},
            "commonLabels": {"alertname": f"Burst{group}"},
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": f"Burst{group}", "instance": f"node-{n}"},
                    "startsAt": "2026-11-30T20:00:00Z",
                    "fingerprint": f"{group:08x}{n:08x}",
                }
                for n in range(3)
            ],
        }
    ).encode()


def _other_sessions() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_burst_beyond_the_pool_gets_2xx_or_503_and_nothing_is_lost(make_user, tmp_path):
    user = make_user(Role.SRE)
    raw, prefix, token_hash = ApiToken.generate()
    ApiToken.objects.create(user=user, name="burst", prefix=prefix, token_hash=token_hash)
    env = production_env(
        ALLOWED_HOSTS="127.0.0.1",
        WEB_CONCURRENCY=str(WORKERS),
        WEB_THREADS=str(THREADS),
        DATABASE_POOL_MAX_SIZE=str(POOL),
        DATABASE_POOL_MIN_SIZE="1",
        DATABASE_POOL_TIMEOUT="0.2",
    )
    headers = {"Authorization": f"Bearer {raw}", "Content-Type": "application/json"}
    statuses: list[int] = []
    lock = threading.Lock()
    peak, sampling = [0], threading.Event()

    def sample() -> None:
        from django.db import connections

        try:
            while not sampling.is_set():
                peak[0] = max(peak[0], _other_sessions())
                time.sleep(0.02)
        finally:
            connections.close_all()

    with gunicorn(env, tmp_path / "gunicorn.log") as base:

        def deliver(group: int) -> None:
            # As Alertmanager does: retry until accepted, after Retry-After (shortened here).
            for _attempt in range(200):
                status, answer_headers, body = http("POST", f"{base}/api/alerts/alertmanager", _payload(group), headers)
                with lock:
                    statuses.append(status)
                if status == 503:
                    assert answer_headers.get("Retry-After", "").isdigit(), answer_headers
                    assert json.loads(body)["error"].startswith("the database is busy")
                    time.sleep(0.05)
                    continue
                assert status == 200, (status, body[:500])
                return
            raise AssertionError(f"delivery {group} never accepted")

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            with ThreadPoolExecutor(max_workers=BURST) as pool:
                list(pool.map(deliver, range(BURST)))
        finally:
            sampling.set()
            sampler.join()
    assert 500 not in statuses
    assert set(statuses) <= {200, 503}
    assert statuses.count(200) == BURST
    # Two gunicorn workers, each with its own pool of at most POOL connections
    # (+1: this test's own session while it sets up the sampler).
    assert peak[0] <= WORKERS * POOL + 1, peak[0]
    assert Incident.objects.filter(dedup_key__startswith="alertmanager:").count() == BURST
    assert AlertReceipt.objects.count() == BURST * 3


@pytest.mark.django_db(transaction=True)
def test_a_database_that_is_down_answers_503_with_retry_after(tmp_path):
    closed = free_port()  # nothing listens there
    env = production_env(
        ALLOWED_HOSTS="127.0.0.1",
        WEB_CONCURRENCY="1",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{closed}/nowhere",
        DATABASE_POOL_TIMEOUT="0.5",
    )
    with gunicorn(env, tmp_path / "gunicorn.log") as base:
        status, headers, body = http("GET", f"{base}/incidents/")
        assert status == 503 and headers["Retry-After"].isdigit()
        assert b"database is busy or unreachable" in body and b"Traceback" not in body
        status, headers, body = http(
            "POST",
            f"{base}/api/alerts/alertmanager",
            _payload(1),
            {"Content-Type": "application/json", "Authorization": "Bearer oc_someone_s_token"},
        )
        assert status == 503 and headers["Retry-After"].isdigit()
        assert json.loads(body)["retry_after"] == int(headers["Retry-After"])
        status, _, body = http("GET", f"{base}/readyz")
        assert status == 503 and b"database" in body
