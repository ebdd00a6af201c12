"""Tick throughput and latency through the real HTTP endpoint.

Starts gunicorn (several sync workers) on a PostgreSQL bench database it
creates, signs N clients in (real database sessions, CSRF token read from
the run page like a browser), and has them tick items concurrently with
htmx requests: groups of clients share a run, each ticking its own items.
First the same clients send as many GETs of the bare view /livez (no
session, no database) to the same server: its server CPU per request is
the floor a tick is measured against. Prints requests/s, p50/p95/p99
latency and gunicorn workers' CPU per request (user + system) for both, then checks that the database holds
exactly the ticks sent (one ticked row and one audit entry per tick, each by
the client that sent it), and the SQL statements one tick sends to PostgreSQL
(a few more ticks in the bench's own process, counted by libpq's trace).

    .venv/bin/python bench/checklists_bench.py --clients 32 --workers 4

Environment: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/opsconsole_bench_checklists;
the database is dropped and re-created), BENCH_REDIS_URL (default redis://127.0.0.1:6379/4).
"""

import argparse
import asyncio
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/opsconsole_bench_checklists")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4")
SERVER_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "bench-only-secret-key-not-for-production-0123456789abcdef",
    "DATABASE_URL": DB_URL,
    "REDIS_URL": REDIS_URL,
    "CELERY_BROKER_URL": "",
    "METRICS_TOKEN": "",
    "LOG_LEVEL": "WARNING",
    "ALLOWED_HOSTS": "127.0.0.1",
}
from common import free_port, recreate_database, start_gunicorn  # noqa: E402  (shared bench helpers)

CSRF_RE = re.compile(r'"X-CSRFToken": "([^"]+)"')
SENT_STATEMENT_RE = re.compile(r'^F\t\d+\t(Query\t "|Parse\t "[^"]*" ")\s*(\w+)', re.MULTILINE)


def setup_django() -> None:
    os.environ.update(SERVER_ENV)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconsole.settings")
    import django

    django.setup()


def prepare(clients: int, per_run: int, runs_per_group: int, items_per_run: int):
    """Users, sessions and runs. Returns [(session_key, [(run_id, item_id), ...])]."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    from checklists.models import ChecklistTemplate, TemplateItem
    from checklists.services import run_start
    from opsconsole.models import User
    from opsconsole.sessions import SessionStore

    call_command("migrate", verbosity=0)
    template = ChecklistTemplate.objects.create(name="Bench checklist")
    TemplateItem.objects.bulk_create(
        TemplateItem(template=template, order=i, text=f"Bench item {i + 1}") for i in range(items_per_run)
    )
    sre = Group.objects.get(name="SRE")
    users = []
    for n in range(clients):
        user = User.objects.create(username=f"bench{n}")
        user.groups.add(sre)
        users.append(user)
    plan = []
    groups = (clients + per_run - 1) // per_run
    group_runs = [[run_start(actor=users[0], template=template) for _ in range(runs_per_group)] for _ in range(groups)]
    for n, user in enumerate(users):
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        # What a password sign-in stores (the first backend of AUTHENTICATION_BACKENDS).
        session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        work = []
        for run in group_runs[n // per_run]:
            items = list(run.items.order_by("order").values_list("pk", flat=True))
            work += [(run.pk, item) for index, item in enumerate(items) if index % per_run == n % per_run]
        plan.append((user.pk, session.session_key, work))
    return plan


async def open_page(http, base: str, session_key: str, work: list, failures: list) -> tuple[dict, dict] | None:
    """Open the client's first run page like a browser: its CSRF cookie and token."""
    cookies = {"sessionid": session_key}
    page = await http.get(f"{base}/checklists/runs/{work[0][0]}/", cookies=cookies)
    match = CSRF_RE.search(page.text)
    if page.status_code != 200 or not match or "csrftoken" not in page.cookies:
        failures.append(f"run page: {page.status_code}")
        return None
    cookies["csrftoken"] = page.cookies["csrftoken"]
    return cookies, {"X-CSRFToken": match.group(1), "HX-Request": "true"}


async def run_client(http, base: str, browser, work: list, latencies: list, failures: list, think: float) -> None:
    if browser is None:
        return
    cookies, headers = browser
    if think:
        # People do not all start in the same millisecond.
        await asyncio.sleep(random.uniform(0, 2 * think))
    for run_id, item_id in work:
        started = time.perf_counter()
        response = await http.post(
            f"{base}/checklists/runs/{run_id}/items/{item_id}/tick/",
            headers=headers,
            cookies=cookies,
        )
        latencies.append(time.perf_counter() - started)
        if response.status_code != 200 or 'data-state="ticked"' not in response.text:
            failures.append(f"tick {item_id}: {response.status_code}")
        if think:
            # A person reads the next item before clicking: random pause around `think`.
            await asyncio.sleep(random.uniform(0.5, 1.5) * think)


async def bare_client(http, base: str, count: int, latencies: list, failures: list) -> None:
    """The same number of requests as a ticking client, to the bare view."""
    for _ in range(count):
        started = time.perf_counter()
        response = await http.get(f"{base}/livez")
        latencies.append(time.perf_counter() - started)
        if response.status_code != 200:
            failures.append(f"livez: {response.status_code}")


async def load(base: str, plan: list, think: float, server_pid: int) -> dict:
    """Two phases on the same server: every client sends as many GETs of the
    bare view (/livez) as it has ticks, then ticks. Returns per phase the
    latencies, failures, elapsed time and gunicorn workers' CPU seconds."""
    import httpx

    phases: dict[str, dict] = {}
    limits = httpx.Limits(max_connections=len(plan), max_keepalive_connections=len(plan))
    async with httpx.AsyncClient(limits=limits, timeout=30) as http:
        # Warm every worker (imports, template loading, DB connections) before timing.
        await asyncio.gather(*(http.get(f"{base}/livez") for _ in range(32)))
        page_failures: list[str] = []
        browsers = await asyncio.gather(*(open_page(http, base, key, work, page_failures) for _, key, work in plan))
        for phase in ("livez", "tick"):
            latencies: list[float] = []
            failures: list[str] = []
            cpu_before = workers_cpu(server_pid)
            started = time.perf_counter()
            if phase == "livez":
                await asyncio.gather(*(bare_client(http, base, len(work), latencies, failures) for _, _, work in plan))
            else:
                await asyncio.gather(
                    *(
                        run_client(http, base, browser, work, latencies, failures, think)
                        for browser, (_, _, work) in zip(browsers, plan, strict=True)
                    )
                )
            phases[phase] = {
                "latencies": latencies,
                "failures": (page_failures if phase == "tick" else []) + failures,
                "elapsed": time.perf_counter() - started,
                "cpu": [after - before for after, before in zip(workers_cpu(server_pid), cpu_before, strict=True)],
            }
    return phases


def verify(plan: list) -> tuple[bool, str]:
    from django.db import connection

    from checklists.models import RunItem
    from opsconsole.models import AuditEntry

    connection.close()
    expected = {item: user_id for user_id, _, work in plan for _, item in work}
    rows = dict(RunItem.objects.filter(state=RunItem.State.TICKED).values_list("pk", "ticked_by_id"))
    audited = AuditEntry.objects.filter(action="checklists.item_tick").count()
    ok = rows == expected and audited == len(expected)
    return (
        ok,
        f"{len(rows)} ticked rows, {audited} tick audit entries, {len(expected)} ticks sent"
        + ("" if rows == expected else " — MISMATCH between ticked rows and ticks sent"),
    )


def workers_cpu(master_pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds used so far by gunicorn's workers (children of the master)."""
    children = subprocess.run(["ps", "--ppid", str(master_pid), "-o", "pid="], capture_output=True, text=True)
    user = system = 0
    for pid in children.stdout.split():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user, system = user + int(fields[11]), system + int(fields[12])  # utime, stime (clock ticks)
    return user / os.sysconf("SC_CLK_TCK"), system / os.sysconf("SC_CLK_TCK")


def workers_cpu_seconds(master_pid: int) -> float:
    """User+system CPU used so far by gunicorn's workers (children of the master)."""
    return sum(workers_cpu(master_pid))


def statements_per_tick(plan: list, samples: int = 5) -> list[list[str]]:
    """The SQL statements one tick sends to PostgreSQL, as the server receives
    them: a few more items of a new run are ticked in this process, through the
    console's whole middleware stack (Django's test client, CSRF check on,
    htmx headers), with libpq's trace of the connection on, so BEGIN and
    COMMIT count too. Returns each tick's statements (their first word)."""
    from django.db import connection
    from django.test import Client
    from psycopg import pq

    from checklists.models import ChecklistTemplate
    from checklists.services import run_start
    from opsconsole.models import User

    user_id, session_key, _ = plan[0]
    template = ChecklistTemplate.objects.get(name="Bench checklist")
    run = run_start(actor=User.objects.get(pk=user_id), template=template)
    client = Client(enforce_csrf_checks=True, HTTP_HOST="127.0.0.1")
    client.cookies["sessionid"] = session_key
    token = CSRF_RE.search(client.get(f"/checklists/runs/{run.pk}/").content.decode()).group(1)
    ticks = []
    for item in list(run.items.order_by("order").values_list("pk", flat=True))[:samples]:
        connection.ensure_connection()
        pgconn = connection.connection.pgconn
        with tempfile.TemporaryFile("w+") as trace:
            pgconn.trace(trace.fileno())
            pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
            try:
                response = client.post(
                    f"/checklists/runs/{run.pk}/items/{item}/tick/", HTTP_X_CSRFTOKEN=token, HTTP_HX_REQUEST="true"
                )
            finally:
                pgconn.untrace()
            trace.seek(0)
            # Messages the client sent: 'F <length> Query "<text>"' (simple
            # protocol) or 'F <length> Parse "<name>" "<text>"' (extended).
            ticks.append([match[-1].upper() for match in SENT_STATEMENT_RE.findall(trace.read())])
        if response.status_code != 200 or 'data-state="ticked"' not in response.content.decode():
            raise SystemExit(f"statement count: the tick answered {response.status_code}")
    return ticks


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers (gunicorn.conf.py default)")
    parser.add_argument("--clients-per-run", type=int, default=4)
    parser.add_argument("--runs-per-group", type=int, default=10)
    parser.add_argument("--items-per-run", type=int, default=20)
    parser.add_argument(
        "--think-ms",
        type=float,
        default=0,
        help="pause between a client's ticks (0: closed loop, as fast as the server answers)",
    )
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    recreate_database(DB_URL)
    setup_django()
    plan = prepare(args.clients, args.clients_per_run, args.runs_per_group, args.items_per_run)
    port = free_port()
    multiproc = tempfile.mkdtemp(prefix="bench-prom-")
    server = start_gunicorn({**os.environ, **SERVER_ENV, "PROMETHEUS_MULTIPROC_DIR": multiproc}, args.workers, port)
    try:
        phases = asyncio.run(load(f"http://127.0.0.1:{port}", plan, args.think_ms / 1000, server.pid))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        shutil.rmtree(multiproc, ignore_errors=True)
    ok, detail = verify(plan)
    statements = statements_per_tick(plan)
    ticks = phases["tick"]
    failures = phases["livez"]["failures"] + ticks["failures"]
    print(
        f"clients={args.clients} gunicorn_workers={args.workers} think_ms={args.think_ms:g} "
        f"cpus={os.cpu_count()} load_avg_before={load_before:.1f} ticks={len(ticks['latencies'])} "
        f"failures={len(failures)}"
    )
    print("same gunicorn, same clients, one phase after the other:")
    for label, phase in (("bare view GET /livez", phases["livez"]), ("tick POST (htmx)", ticks)):
        ms = [x * 1000 for x in phase["latencies"]]
        if not ms:
            continue
        print(
            f"  {label:<22} {len(ms) / phase['elapsed']:6.0f} req/s   p50 {statistics.median(ms):6.1f} ms   "
            f"p95 {percentile(ms, 95):6.1f} ms   p99 {percentile(ms, 99):6.1f} ms   "
            f"server CPU {sum(phase['cpu']) * 1000 / len(ms):5.2f} ms per request "
            f"(user {phase['cpu'][0] * 1000 / len(ms):4.2f} + system {phase['cpu'][1] * 1000 / len(ms):4.2f})"
        )
    print(
        "  (server CPU: user+system time of the gunicorn workers / requests;"
        " PostgreSQL and the load generator not included)"
    )
    counts = sorted({len(tick) for tick in statements})
    print(
        f"SQL statements per tick: {'–'.join(map(str, counts))} "
        f"({', '.join(statements[-1])}; BEGIN and COMMIT included, counted by libpq's trace)"
    )
    print(f"database: {detail} -> {'OK' if ok and not failures else 'FAILED'}")
    if failures:
        print("first failures:", failures[:5])
    sys.exit(0 if ok and not failures else 1)


if __name__ == "__main__":
    main()
