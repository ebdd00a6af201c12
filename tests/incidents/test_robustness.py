"""Concurrency, the SQLite trigger used by `make run`, and multiprocess metrics."""

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from incidents import services
from incidents.models import Incident, TimelineEvent

ROOT = Path(settings.BASE_DIR)


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_alerts_for_one_group_open_one_incident():
    services.ensure_defaults()
    barrier = threading.Barrier(6)
    errors = []

    def fire(n):
        try:
            barrier.wait()
            services.open_or_update_from_source(
                dedup_key="race", title="Queue backlog", severity=3, text=f"delivery {n}"
            )
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=fire, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    incident = Incident.objects.get()
    assert TimelineEvent.objects.filter(incident=incident, kind="alert").count() == 6


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR")}
    env.update({"DEBUG": "true", "LOG_LEVEL": "WARNING", **extra})
    return env


@pytest.mark.slow
def test_sqlite_database_refuses_timeline_rewrites_too(tmp_path):
    db = tmp_path / "dev.sqlite3"
    script = (
        "import django; django.setup();"
        "from incidents import services;"
        "services.incident_declare(actor=None, title='dev', severity=3)"
    )
    env = _env(DATABASE_URL=f"sqlite:///{db}", DJANGO_SETTINGS_MODULE="opsconsole.settings")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True)
    conn = sqlite3.connect(db)
    try:
        for sql in (
            "UPDATE incidents_timelineevent SET text = 'x'",
            "DELETE FROM incidents_timelineevent",
        ):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                conn.execute(sql)
        assert conn.execute("SELECT count(*) FROM incidents_timelineevent").fetchone()[0] == 1
    finally:
        conn.close()


@pytest.mark.slow
def test_histograms_aggregate_across_processes(tmp_path):
    """Two processes observe time-to-acknowledge; one scrape sees both."""
    env = _env(PROMETHEUS_MULTIPROC_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="opsconsole.settings")
    observe = "import django; django.setup(); from incidents import metrics; metrics.observe_ack('SEV-2', {})"
    for seconds in (120, 600):
        subprocess.run([sys.executable, "-c", observe.format(seconds)], cwd=ROOT, env=env, check=True)
    scrape = (
        "import django; django.setup();"
        "from prometheus_client import CollectorRegistry, generate_latest, multiprocess;"
        "r = CollectorRegistry(); multiprocess.MultiProcessCollector(r);"
        "print(generate_latest(r).decode())"
    )
    out = subprocess.run(
        [sys.executable, "-c", scrape],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert 'opsconsole_incident_time_to_acknowledge_seconds_count{severity="SEV-2"} 2.0' in out
    assert 'opsconsole_incident_time_to_acknowledge_seconds_sum{severity="SEV-2"} 720.0' in out
