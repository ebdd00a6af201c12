"""What 50 open pages cost while they poll for live updates (opsconsole/live.py).

Starts gunicorn (sync workers) on a PostgreSQL bench database it creates,
signs N pages in (real database sessions, one user each), opens them on the
live pages (incident page, incident list, dashboard, status board) and has
each poll like the browser does: every --interval seconds, the same URL with
`HX-Trigger: live-poll` and `If-None-Match: <the page's ETag>`. Three phases,
same server, same run, printed side by side:

1. bare: every page polls /livez instead (the cheapest view: the floor);
2. quiet: live polls while nothing changes (expected: all 304);
3. busy: live polls while someone adds a note to the incident every --interval
   seconds (the pages that show it re-render: 200 with a new ETag).

For each phase: polls, status counts, p50/p95/max latency seen by the client
and gunicorn workers' CPU per poll (user+system from /proc).

    .venv/bin/python bench/live_bench.py --pages 50 --seconds 20

Environment: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/opsconsole_bench_live;
dropped and re-created), BENCH_REDIS_URL (default redis://127.0.0.1:6379/5).
"""

import argparse
import asyncio
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from common import bench_settings, free_port, percentile, recreate_database, start_gunicorn  # noqa: E402  (shared bench helpers)

DB_URL = bench_settings("opsconsole_bench_live", redis_db=5, ALLOWED_HOSTS="127.0.0.1")

from checklists_bench import workers_cpu_seconds  # noqa: E402

ETAG_RE = re.compile(r'id="live-poll"[^>]*data-etag="([^"]+)"')


def prepare(pages: int):
    """Users with sessions, an incident with some history, a few checks."""
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    from healthchecks.models import Check
    from incidents import services
    from opsconsole.models import Service, User
    from opsconsole.sessions import SessionStore

    call_command("migrate", verbosity=0)
    group = Group.objects.get(name="Incident Commander")
    users = []
    for n in range(pages):
        user = User.objects.create(username=f"bench{n}", first_name="Bench", last_name=str(n))
        user.groups.add(group)
        users.append(user)
    service = Service.objects.create(slug="checkout", name="Checkout")
    for n in range(20):
        Check.objects.create(service=service, name=f"check {n}", kind=Check.Kind.HTTP)
    incident = services.incident_declare(actor=users[0], title="Bench incident", severity=2, services=[service])
    for n in range(30):
        services.incident_add_note(incident=incident, actor=users[n % len(users)], text=f"note {n}")
    sessions = []
    for user in users:
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]  # what a password sign-in stores
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        sessions.append(session.session_key)
    urls = [f"/incidents/{incident.reference}/", "/incidents/", "/", "/health/"]
    return users, incident, sessions, urls


async def open_page(client, url: str) -> str:
    response = await client.get(url)
    response.raise_for_status()
    match = ETAG_RE.search(response.text)
    if not match:
        raise SystemExit(f"{url} has no live poller")
    return match.group(1).replace("&quot;", '"')


async def poller(client, url: str, etag: str | None, interval: float, until: float, samples: list, statuses: Counter):
    await asyncio.sleep(random.uniform(0, interval))  # pages were opened at different moments
    headers = {"HX-Request": "true", "HX-Trigger": "live-poll"}
    while time.monotonic() < until:
        started = time.perf_counter()
        response = await client.get(url, headers={**headers, "If-None-Match": etag} if etag else headers)
        samples.append(((time.perf_counter() - started) * 1000, response.status_code))
        statuses[response.status_code] += 1
        if etag and response.status_code == 200:
            etag = response.headers.get("ETag", etag)
        await asyncio.sleep(interval)


async def phase(name, base, sessions, urls, live: bool, args, server_pid, writer=None) -> dict:
    import httpx

    clients = [
        httpx.AsyncClient(base_url=base, cookies={"sessionid": key}, timeout=30, follow_redirects=False)
        for key in sessions
    ]
    try:
        targets = [urls[n % len(urls)] if live else "/livez" for n in range(len(clients))]
        etags = [await open_page(c, u) if live else None for c, u in zip(clients, targets, strict=True)]
        samples, statuses = [], Counter()
        cpu_before = workers_cpu_seconds(server_pid)
        until = time.monotonic() + args.seconds
        tasks = [
            poller(c, u, e, args.interval, until, samples, statuses)
            for c, u, e in zip(clients, targets, etags, strict=True)
        ]
        if writer is not None:
            tasks.append(writer(until))
        await asyncio.gather(*tasks)
        cpu = workers_cpu_seconds(server_pid) - cpu_before
    finally:
        for client in clients:
            await client.aclose()
    return {"name": name, "samples": samples, "statuses": statuses, "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=50, help="open pages polling")
    parser.add_argument("--seconds", type=float, default=20, help="length of each phase")
    parser.add_argument("--interval", type=float, default=3, help="seconds between polls (live.POLL_SECONDS)")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers (gunicorn.conf.py default)")
    args = parser.parse_args()

    recreate_database(DB_URL)
    users, incident, sessions, urls = prepare(args.pages)
    from asgiref.sync import sync_to_async

    from incidents import services

    def add_note(n: int) -> None:
        services.incident_add_note(incident=incident, actor=users[n % len(users)], text=f"busy note {n}")

    async def writer(until: float) -> None:
        n = 0
        while time.monotonic() < until:
            await asyncio.sleep(args.interval)
            await sync_to_async(add_note, thread_sensitive=False)(n)
            n += 1

    multiproc_dir = tempfile.mkdtemp(prefix="live-bench-metrics-")
    port = free_port()
    server = start_gunicorn({**os.environ, "PROMETHEUS_MULTIPROC_DIR": multiproc_dir}, args.workers, port, quiet=True)
    base = f"http://127.0.0.1:{port}"
    try:
        load_before = os.getloadavg()[0]
        results = [
            asyncio.run(phase("bare /livez", base, sessions, urls, False, args, server.pid)),
            asyncio.run(phase("live, nothing new", base, sessions, urls, True, args, server.pid)),
            asyncio.run(phase("live, a note every interval", base, sessions, urls, True, args, server.pid, writer)),
        ]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        shutil.rmtree(multiproc_dir, ignore_errors=True)
    print(
        f"pages={args.pages} interval={args.interval:g}s phase={args.seconds:g}s gunicorn_workers={args.workers} "
        f"cpus={os.cpu_count()} load_avg_before={load_before:.1f} pages_on={', '.join(urls)}"
    )
    print(f"{'phase':32} {'polls':>6} {'statuses':24} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7} {'CPU ms/poll':>11}")
    for result in results:
        for label, wanted in (("", None), ("  of which 304", 304)):
            samples = [ms for ms, code in result["samples"] if wanted is None or code == wanted]
            if not samples or (wanted and wanted not in result["statuses"]):
                continue
            statuses = " ".join(f"{code}:{count}" for code, count in sorted(result["statuses"].items()))
            cpu = f"{result['cpu'] * 1000 / len(result['samples']):>11.2f}" if wanted is None else ""
            print(
                f"{label or result['name']:32} {len(samples):>6} {statuses if wanted is None else '':24} "
                f"{percentile(samples, 50):>7.1f} {percentile(samples, 95):>7.1f} {max(samples):>7.1f} {cpu}"
            )
    print("A page re-renders at least once a minute (live.REFRESH_SECONDS): a phase that spans a minute")
    print("boundary shows one 200 per page even when nothing was written.")


if __name__ == "__main__":
    main()
