"""PostgreSQL restarted under load, on a private cluster (the shared one is
never touched): every answer of the same gunicorn is 200 or a clean 503 with
Retry-After (never a 500, never a traceback), it answers 200 again within
seconds of PostgreSQL's return without being restarted, and every webhook
delivery a retrying sender got through is stored exactly once."""

import json
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest

from bench.servers import gunicorn, http
from tests.opsconsole.faults import private_postgres, signed_in_client
from tests.processes import ROOT, production_env, wait_until

pytestmark = [pytest.mark.slow]

DOWN_SECONDS = 2.0

# Run by `manage.py shell` on the private database: a signed-in SRE, an API
# token, a checklist run; prints what the load needs.
SETUP = """
import json
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import Group
from opsconsole.sessions import SessionStore
from checklists.models import ChecklistTemplate, TemplateItem
from checklists.services import run_start
from opsconsole.models import ApiToken, User

user = User.objects.create(username="sre-fault", email="sre@example.com")
user.groups.add(Group.objects.get(name="SRE"))
raw, prefix, token_hash = ApiToken.generate()
ApiToken.objects.create(user=user, name="faults", prefix=prefix, token_hash=token_hash)
template = ChecklistTemplate.objects.create(name="Restart drill")
TemplateItem.objects.bulk_create(TemplateItem(template=template, order=i, text=f"Step {i}") for i in range(100))
run = run_start(actor=user, template=template)
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
items = list(run.items.order_by("order").values_list("pk", flat=True))
print(json.dumps({"token": raw, "session": session.session_key, "run": run.pk, "items": items}))
"""

COUNT = """
from checklists.models import RunItem
from incidents.models import AlertReceipt, Incident
print(Incident.objects.filter(dedup_key__startswith="alertmanager:").count(), AlertReceipt.objects.count(),
      RunItem.objects.filter(state="ticked").count())
"""


def _manage(env: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _payload(group: int) -> bytes:
    return json.dumps(
        {
            "version": "4",
            "groupKey": f'{{}}:{{alertname="Restart{group}"}}',
            "status": "firing",
            "receiver": "console",
            "groupLabels": {"alertname": f"Restart{group}"},
            "commonLabels": {"alertname": f"Restart{group}"},
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": f"Restart{group}", "instance": "node-1"},
                    "startsAt": "2026-11-30T20:00:00Z",
                    "fingerprint": f"{group:016x}",
                }
            ],
        }
    ).encode()


# Production's pool, and persistent connections without one (DATABASE_POOL_MAX_SIZE=0,
# CONN_MAX_AGE with health checks): both must recover by themselves.
@pytest.mark.parametrize("pool_size", ["4", "0"], ids=["pool", "no-pool"])
def test_postgres_restart_under_load_gives_200_or_clean_503_and_recovers(tmp_path, pool_size):
    with private_postgres() as pg:
        env = production_env(
            DATABASE_URL=pg.url,
            ALLOWED_HOSTS="127.0.0.1",
            WEB_CONCURRENCY="2",
            WEB_THREADS="4",
            DATABASE_POOL_MAX_SIZE=pool_size,
            DATABASE_POOL_MIN_SIZE="1",
            DATABASE_POOL_TIMEOUT="1",
        )
        started = time.monotonic()
        _manage(env, "migrate", "--noinput", "-v0")
        fixture = json.loads(_manage(env, "shell", "-c", SETUP).strip().splitlines()[-1])
        prepared = time.monotonic() - started
        answers: list[tuple[str, int, str, str]] = []  # (what, status, Retry-After, body head)
        lock = threading.Lock()
        stop = threading.Event()
        delivered: list[int] = []
        ticked: list[int] = []

        with gunicorn(env, tmp_path / "gunicorn.log") as base:
            run_page = f"/checklists/runs/{fixture['run']}/"
            client = signed_in_client(base, fixture["session"], run_page)

            def record(what: str, status: int, headers, body: bytes | str) -> None:
                text = body if isinstance(body, str) else body.decode(errors="replace")
                with lock:
                    answers.append((what, status, headers.get("Retry-After", ""), text[:2000]))

            def pages() -> None:
                while not stop.is_set():
                    response = client.get(run_page)
                    record("page", response.status_code, response.headers, response.text)

            def ticks() -> None:
                for item in fixture["items"]:
                    if stop.is_set():
                        return
                    while not stop.is_set():
                        response = client.post(f"{run_page}items/{item}/tick/", headers={"HX-Request": "true"})
                        record("tick", response.status_code, response.headers, response.text)
                        if response.status_code == 200:
                            ticked.append(item)
                            break
                        time.sleep(0.1)

            def webhooks() -> None:
                headers = {"Authorization": f"Bearer {fixture['token']}", "Content-Type": "application/json"}
                group = 0
                while not stop.is_set():
                    # As Alertmanager does: the same group again until it is accepted.
                    status, answer_headers, body = http(
                        "POST", f"{base}/api/alerts/alertmanager", _payload(group), headers
                    )
                    record("webhook", status, answer_headers, body)
                    if status == 200:
                        delivered.append(group)
                        group += 1
                    else:
                        time.sleep(0.1)

            threads = [threading.Thread(target=target) for target in (pages, pages, ticks, webhooks)]
            for thread in threads:
                thread.start()
            try:
                time.sleep(2)  # load on a healthy database first
                pg.pg_ctl("stop", "-m", "fast", "-w")
                stopped_at = time.monotonic()
                time.sleep(DOWN_SECONDS)
                pg.pg_ctl("start", "-w", "-o", f"-p {pg.port} -k {pg.dir} -c listen_addresses=127.0.0.1 -c fsync=off")
                back_at = time.monotonic()
                during = len(answers)
                # The same gunicorn, never restarted, answers 200 again within seconds.
                recovered_after = wait_until(
                    lambda: (
                        (answers[-1][1] == 200 and time.monotonic() - back_at)
                        if answers and len(answers) > during
                        else None
                    ),
                    15,
                    "a 200 after PostgreSQL came back",
                    interval=0.05,
                )
                time.sleep(2)  # and keeps answering under load
            finally:
                stop.set()
                for thread in threads:
                    thread.join(timeout=60)

            assert http("GET", f"{base}/readyz")[0] == 200
            final = client.get(run_page)
            assert final.status_code == 200

        statuses = Counter((what, status) for what, status, _, _ in answers)
        print(
            f"prepared in {prepared:.1f} s; database down {back_at - stopped_at:.1f} s; "
            f"first 200 {recovered_after:.2f} s after it returned; answers {dict(statuses)}"
        )
        bad = [(what, status, body[:300]) for what, status, _, body in answers if status not in (200, 503)]
        assert not bad, bad[:5]
        unavailable = [answer for answer in answers if answer[1] == 503]
        assert unavailable, "the outage was never seen: the test proved nothing"
        for what, _, retry_after, body in unavailable:
            assert retry_after.isdigit(), (what, body[:300])
            assert "Traceback" not in body and "busy or unreachable" in body, (what, body[:300])
        assert all("Traceback" not in body for _, _, _, body in answers)
        incidents, receipts, ticks_stored = map(
            int, _manage(env, "shell", "-c", COUNT).strip().splitlines()[-1].split()
        )
        # Every accepted delivery is stored once; every accepted tick is in PostgreSQL.
        assert incidents == receipts == len(delivered), (incidents, receipts, len(delivered))
        assert ticks_stored == len(ticked) == len(set(ticked))
        assert statuses[("webhook", 200)] > 0 and statuses[("tick", 200)] > 0
        log = (tmp_path / "gunicorn.log").read_text()
        assert '"status": 500' not in log, log[-3000:]
