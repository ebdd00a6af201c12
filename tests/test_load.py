"""20 users at once ticking, noting and acknowledging through real gunicorn
on PostgreSQL: the database holds exactly what was sent, no answer is a 5xx.
The same plan as bench/load_bench.py (which reports the figures), smaller."""

import secrets

import pytest
from django.conf import settings

from bench import load_bench
from tests.processes import free_port, production_env

pytestmark = pytest.mark.slow


@pytest.fixture
def server(transactional_db, tmp_path):
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    # The sessions are made in this process: the server must sign with the same key.
    env = production_env(
        SECRET_KEY=settings.SECRET_KEY,
        ALLOWED_HOSTS="127.0.0.1",
        PROMETHEUS_MULTIPROC_DIR=str(multiproc),
        METRICS_TOKEN=secrets.token_hex(8),
    )
    port = free_port()
    process = load_bench.start_server(env, workers=3, port=port)
    yield f"http://127.0.0.1:{port}"
    load_bench.stop_server(process)


def test_twenty_users_ticking_noting_and_acknowledging_lose_and_double_nothing(server):
    plan = load_bench.prepare(users=20, ticks=8, notes=3, acks=1)
    outcome = load_bench.run(server, plan)
    assert outcome.failures == []
    assert not [status for status in outcome.statuses if status >= 500]
    assert {kind: len(times) for kind, times in outcome.latencies.items()} == {
        "tick": 160,
        "note": 60,
        "ack": 20,
        "livez": 160,
    }
    assert load_bench.verify(plan) == []
