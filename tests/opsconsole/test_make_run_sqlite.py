"""`make run` works on SQLite, its default database: the suite runs on
PostgreSQL, so plain SQL written for it (a data-modifying CTE, a PL/pgSQL
function) would otherwise break the first command of the README unseen.
This runs what `make run` runs before it starts the servers (migrate,
seed_demo), then the busiest paths through the views and every periodic
task once, in a subprocess on a fresh SQLite file."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)

SCRIPT = r"""
import json, django
django.setup()
from django.test import Client
from checklists.models import RunItem
from incidents.models import Incident
from opsconsole.models import ApiToken, User

client = Client(HTTP_HOST="127.0.0.1")
client.force_login(User.objects.get(username="sre"))
for url in ("/", "/checklists/", "/incidents/", "/health/", "/oncall/", "/runbooks/"):
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)

item = RunItem.objects.filter(state="open", run__status__in=["open", "in_progress"]).select_related("run").first()
assert item is not None, "the demo data has an open checklist item"
tick = client.post(f"/checklists/runs/{item.run_id}/items/{item.pk}/tick/", HTTP_HX_REQUEST="true")
assert tick.status_code == 200, tick.status_code
item.refresh_from_db()
assert item.state == "ticked" and item.ticked_by.username == "sre"
again = client.post(f"/checklists/runs/{item.run_id}/items/{item.pk}/tick/", HTTP_HX_REQUEST="true")
assert again.status_code in (200, 409) and "Already ticked" in again.content.decode()

raw, prefix, token_hash = ApiToken.generate()
ApiToken.objects.create(user=User.objects.get(username="sre"), name="am", prefix=prefix, token_hash=token_hash)
body = {
    "version": "4", "groupKey": "{}:{alertname=\"SmokeTest\"}", "status": "firing", "receiver": "console",
    "alerts": [{"status": "firing", "labels": {"alertname": "SmokeTest", "severity": "high"},
                "annotations": {"summary": "queue <deep>"}, "startsAt": "2026-12-01T06:00:00Z", "fingerprint": "f1"}],
}
for _ in range(2):  # the second is a retry
    response = client.post("/api/alerts/alertmanager", json.dumps(body), content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200, response.content
assert Incident.objects.filter(title="SmokeTest").count() == 1
assert response.json()["duplicates"] == 1
# Every periodic task beat would start, once, as the worker runs it.
from django.conf import settings
from opsconsole.celery import app
app.loader.import_default_modules()
for entry in settings.CELERY_BEAT_SCHEDULE.values():
    result = app.tasks[entry["task"]].apply()
    assert result.successful(), (entry["task"], result.traceback)
print("smoke ok")
"""


@pytest.mark.slow
def test_make_run_on_sqlite_migrates_seeds_and_serves_the_busiest_paths(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "PROMETHEUS_MULTIPROC_DIR")}
    env.update(
        DEBUG="true",
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="opsconsole.settings",
        DATABASE_URL=f"sqlite:///{tmp_path / 'console.sqlite3'}",
        CELERY_BROKER_URL="",
    )
    for command in (["migrate", "--noinput", "-v0"], ["seed_demo"]):
        done = subprocess.run(
            [sys.executable, "manage.py", *command], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "smoke ok" in done.stdout
