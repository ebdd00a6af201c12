"""Concurrent users ticking, noting and acknowledging through gunicorn on PostgreSQL.

    .venv/bin/python bench/load_bench.py [--users 50] [--ticks 20] [--notes 5] [--acks 2] [--workers 3]

Starts gunicorn (the project's gunicorn.conf.py, --workers sync workers) on a
bench database it re-creates, signs --users Incident Commanders in (real
database sessions, the CSRF token read from a page like a browser), and has
them all work at once, each in its own shuffled order:

- tick: --ticks checklist items (htmx POST; groups of 5 users share runs);
- note: --notes incident notes (htmx POST; groups of 5 users share an incident);
- ack: acknowledge --acks incidents of their own (POST, answered by a redirect);
- livez: as many GETs of the bare view /livez as ticks, interleaved with the rest.

Prints throughput and p50/p95 latency per endpoint (the bare view beside the
others, same server, same run) and then checks that the database holds exactly
what was sent: every ticked item by its sender and one audit entry per tick,
every note once with its author, every acknowledgement once by its sender;
no 5xx answer.

Environment: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/opsconsole_bench_load;
dropped and re-created), BENCH_REDIS_URL (default redis://127.0.0.1:6379/9).
tests/test_load.py runs the same plan with 20 users on the test database.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CSRF_RE = re.compile(r'"X-CSRFToken": "([^"]+)"')
ENDPOINTS = ("tick", "note", "ack", "livez")
GROUP = 5  # users sharing a checklist run and an incident


@dataclass
class Client:
    user_id: int
    session_key: str
    first_page: str
    ops: list[tuple[str, tuple]] = field(default_factory=list)


@dataclass
class Plan:
    clients: list[Client]
    ticks: dict[int, int]  # item id → user id
    notes: collections.Counter  # (incident id, text, user id) → 1
    acks: dict[int, int]  # incident id → user id


def prepare(users: int, ticks: int, notes: int, acks: int, seed: int = 7) -> Plan:
    """Users, sessions, runs and incidents (in this process, committed), and
    each user's shuffled list of requests."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.auth.models import Group

    from checklists.models import ChecklistTemplate, TemplateItem
    from checklists.services import run_start
    from incidents.models import TimelineEvent
    from incidents.services import incident_declare
    from opsconsole.roles import Role
    from opsconsole.sessions import SessionStore

    rng = random.Random(seed)
    user_model = get_user_model()
    commander = Group.objects.get(name=Role.INCIDENT_COMMANDER.value)
    people = []
    for n in range(users):
        user = user_model.objects.create(username=f"load{n}")
        user.groups.add(commander)
        people.append(user)
    groups = (users + GROUP - 1) // GROUP
    # Each group shares runs: every member ticks `ticks` items of its own across them.
    items_per_run = 20
    runs_per_group = max(1, (ticks * GROUP + items_per_run - 1) // items_per_run)
    template = ChecklistTemplate.objects.create(name="Load checklist")
    TemplateItem.objects.bulk_create(
        TemplateItem(template=template, order=i, text=f"Load item {i + 1}") for i in range(items_per_run)
    )
    group_items: list[list[tuple[int, int]]] = []
    shared_incidents = []
    for _ in range(groups):
        runs = [run_start(actor=people[0], template=template) for _ in range(runs_per_group)]
        group_items.append(
            [(run.pk, item) for run in runs for item in run.items.order_by("order").values_list("pk", flat=True)]
        )
        shared_incidents.append(incident_declare(actor=people[0], title="Shared load incident", severity=2))
    plan = Plan([], {}, collections.Counter(), {})
    for n, user in enumerate(people):
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        # What a password sign-in stores (the first backend of AUTHENTICATION_BACKENDS).
        session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        group, member = divmod(n, GROUP)
        mine = group_items[group][member::GROUP][:ticks]
        incident = shared_incidents[group]
        after = TimelineEvent.objects.filter(incident=incident).order_by("-id").values_list("id", flat=True).first()
        own = [incident_declare(actor=people[0], title=f"Load incident {n}.{a}", severity=3) for a in range(acks)]
        client = Client(user.pk, session.session_key, f"/checklists/runs/{mine[0][0]}/" if mine else "/checklists/")
        client.ops += [("tick", (run_id, item_id)) for run_id, item_id in mine]
        client.ops += [("note", (incident.reference, f"load note {n}.{i}", after)) for i in range(notes)]
        client.ops += [("ack", (own_incident.reference,)) for own_incident in own]
        client.ops += [("livez", ())] * len(mine)
        rng.shuffle(client.ops)
        plan.clients.append(client)
        plan.ticks.update({item_id: user.pk for _, item_id in mine})
        plan.notes.update((incident.pk, f"load note {n}.{i}", user.pk) for i in range(notes))
        plan.acks.update({own_incident.pk: user.pk for own_incident in own})
    return plan


@dataclass
class Outcome:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {e: [] for e in ENDPOINTS})
    failures: list[str] = field(default_factory=list)
    statuses: collections.Counter = field(default_factory=collections.Counter)
    elapsed: float = 0.0


async def _client(http, base: str, client: Client, outcome: Outcome) -> None:
    # Each simulated user's cookies go in its own Cookie header: the HTTP
    # client is shared, and per-request cookies are deprecated in httpx.
    page = await http.get(f"{base}{client.first_page}", headers={"Cookie": f"sessionid={client.session_key}"})
    match = CSRF_RE.search(page.text)
    if page.status_code != 200 or not match or "csrftoken" not in page.cookies:
        outcome.failures.append(f"first page: {page.status_code}")
        return
    cookie = f"sessionid={client.session_key}; csrftoken={page.cookies['csrftoken']}"
    headers = {"X-CSRFToken": match.group(1), "HX-Request": "true", "Cookie": cookie}
    for kind, args in client.ops:
        started = time.perf_counter()
        if kind == "tick":
            response = await http.post(f"{base}/checklists/runs/{args[0]}/items/{args[1]}/tick/", headers=headers)
            ok = response.status_code == 200 and 'data-state="ticked"' in response.text
        elif kind == "note":
            reference, text, after = args
            data = {"text": text, "after": str(after or 0)}
            response = await http.post(f"{base}/incidents/{reference}/notes/", data=data, headers=headers)
            ok = response.status_code == 200 and text in response.text
        elif kind == "ack":
            # A plain form POST: the console answers with a redirect to the incident.
            data = {"to": "acknowledged"}
            plain = {"X-CSRFToken": headers["X-CSRFToken"], "Cookie": cookie}
            response = await http.post(f"{base}/incidents/{args[0]}/status/", data=data, headers=plain)
            ok = response.status_code == 302
        else:
            response = await http.get(f"{base}/livez")
            ok = response.status_code == 200
        outcome.latencies[kind].append(time.perf_counter() - started)
        outcome.statuses[response.status_code] += 1
        if not ok:
            outcome.failures.append(f"{kind} {args}: HTTP {response.status_code}")


async def _run(base: str, plan: Plan) -> Outcome:
    import httpx

    outcome = Outcome()
    size = len(plan.clients)
    limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
    async with httpx.AsyncClient(limits=limits, timeout=60, follow_redirects=False) as http:
        await asyncio.gather(*(http.get(f"{base}/livez") for _ in range(16)))  # warm every worker
        started = time.perf_counter()
        await asyncio.gather(*(_client(http, base, client, outcome) for client in plan.clients))
        outcome.elapsed = time.perf_counter() - started
    return outcome


def run(base: str, plan: Plan) -> Outcome:
    return asyncio.run(_run(base, plan))


def verify(plan: Plan) -> list[str]:
    """What the database holds against what was sent: the list of differences."""
    from django.db import connection

    from checklists.models import RunItem
    from incidents.models import EventKind, Incident, Status, TimelineEvent
    from opsconsole.models import AuditEntry

    connection.close()  # a fresh connection: see every commit
    problems = []
    ticked = dict(RunItem.objects.filter(state=RunItem.State.TICKED).values_list("pk", "ticked_by_id"))
    if ticked != plan.ticks:
        problems.append(f"ticked items differ: {len(ticked)} in the database, {len(plan.ticks)} sent")
    tick_audits = AuditEntry.objects.filter(action="checklists.item_tick").count()
    if tick_audits != len(plan.ticks):
        problems.append(f"{tick_audits} tick audit entries for {len(plan.ticks)} ticks")
    notes = collections.Counter(
        TimelineEvent.objects.filter(kind=EventKind.NOTE).values_list("incident_id", "text", "author_id")
    )
    if notes != plan.notes:
        problems.append(f"notes differ: {sum(notes.values())} in the database, {sum(plan.notes.values())} sent")
    acked = dict(
        TimelineEvent.objects.filter(kind=EventKind.STATUS, incident_id__in=plan.acks).values_list(
            "incident_id", "author_id"
        )
    )
    status_events = TimelineEvent.objects.filter(kind=EventKind.STATUS, incident_id__in=plan.acks).count()
    statuses = set(Incident.objects.filter(pk__in=plan.acks).values_list("status", flat=True))
    if acked != plan.acks or status_events != len(plan.acks) or statuses != {Status.ACKNOWLEDGED}:
        problems.append(f"acknowledgements differ: {status_events} status events for {len(plan.acks)} sent")
    return problems


# --- the server --------------------------------------------------------------------


def start_server(env: dict[str, str], workers: int, port: int) -> subprocess.Popen:
    env = {**env, "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": str(workers)}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--access-logfile", "/dev/null"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("gunicorn did not start within 30 s")


def stop_server(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def report(plan: Plan, outcome: Outcome) -> None:
    from bench.common import percentile

    print(
        f"{sum(len(c.ops) for c in plan.clients):,} requests in {outcome.elapsed:.1f} s; "
        f"HTTP statuses {dict(outcome.statuses)}"
    )
    for kind in ENDPOINTS:
        ms = [x * 1000 for x in outcome.latencies[kind]]
        if ms:
            print(
                f"  {kind:<6} {len(ms):6} requests  {len(ms) / outcome.elapsed:7.1f} req/s   "
                f"p50 {statistics.median(ms):7.1f} ms   p95 {percentile(ms, 95):7.1f} ms"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--ticks", type=int, default=20, help="checklist items each user ticks")
    parser.add_argument("--notes", type=int, default=5, help="incident notes each user adds")
    parser.add_argument("--acks", type=int, default=2, help="incidents each user acknowledges")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers")
    args = parser.parse_args()

    from bench.common import bench_settings, free_port, setup_django

    bench_settings("opsconsole_bench_load", redis_db=9)
    setup_django(os.environ["DATABASE_URL"])
    load_before = os.getloadavg()[0]
    plan = prepare(args.users, args.ticks, args.notes, args.acks)
    multiproc = tempfile.mkdtemp(prefix="bench-prom-")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": multiproc, "ALLOWED_HOSTS": "127.0.0.1"}
    port = free_port()
    server = start_server(env, args.workers, port)
    try:
        outcome = run(f"http://127.0.0.1:{port}", plan)
    finally:
        stop_server(server)
    print(f"users={args.users} gunicorn_workers={args.workers} cpus={os.cpu_count()} load_avg_before={load_before:.1f}")
    report(plan, outcome)
    problems = verify(plan)
    five_hundreds = sum(n for status, n in outcome.statuses.items() if status >= 500)
    print(
        f"database: {len(plan.ticks)} ticks, {sum(plan.notes.values())} notes, {len(plan.acks)} acknowledgements sent; "
        + ("holds exactly that" if not problems else "; ".join(problems))
        + f"; 5xx answers: {five_hundreds}; failed requests: {len(outcome.failures)}"
    )
    if outcome.failures:
        print("first failures:", outcome.failures[:5])
    sys.exit(0 if not problems and not outcome.failures and not five_hundreds else 1)


if __name__ == "__main__":
    main()
