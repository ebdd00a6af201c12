"""Manager reviews page speed at a large incident history.

Runs in-process with Django's test client (no network in the timings) on a
PostgreSQL bench database it drops and re-creates:

1. generates --incidents past incidents over --days days with reviews,
   action items and recurrences (incidents.reviews.demo.generate_history, the
   same generator seed_demo uses at 300 incidents);
2. times /incidents/reviews/ (lists + six trend charts) for the default 12
   weeks, 52 weeks, and 12 weeks filtered by one service, plus one review page
   and the Markdown export: server time p50/p95/max and SQL queries per request.

    .venv/bin/python bench/reviews_bench.py --incidents 5000

Target: the manager page under 300 ms at 5,000 incidents.
Environment: BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/opsconsole_bench_reviews; dropped and
re-created), BENCH_REDIS_URL (default redis://127.0.0.1:6379/7).
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/opsconsole_bench_reviews")
os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "opsconsole.settings",
        "DEBUG": "false",
        "SECRET_KEY": "bench-only-secret-key-not-for-production-0123456789abcdef",
        "DATABASE_URL": DB_URL,
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7"),
        "CELERY_BROKER_URL": "",
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "METRICS_TOKEN": "",
        "PROMETHEUS_MULTIPROC_DIR": "",
        "LOG_LEVEL": "WARNING",
        "ALLOWED_HOSTS": "testserver,127.0.0.1",
        "NOTIFY_WEBHOOK_URL": "",
    }
)


def recreate_database() -> None:
    import psycopg

    parsed = urlparse(DB_URL)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def timed(fn, repeat: int) -> tuple[list[float], list[int], object]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times, cpu, queries, last = [], [], [], None
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as ctx:
            started, started_cpu = time.perf_counter(), time.process_time()
            last = fn()
            times.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
        queries.append(len(ctx.captured_queries))
    return times, cpu, queries, last


def report(label: str, times: list[float], cpu: list[float], queries: list[int]) -> None:
    """Wall time, and the web process's own CPU time (what the request costs
    when the machine is not shared: a loaded 2-core box inflates wall time)."""
    times = sorted(times)
    p95 = times[max(0, int(len(times) * 0.95) - 1)]
    print(
        f"  {label:<40} p50 {statistics.median(times):7.1f} ms   p95 {p95:7.1f} ms   "
        f"max {times[-1]:7.1f} ms   cpu p50 {statistics.median(cpu):6.1f} ms   queries {min(queries)}–{max(queries)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=5000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    recreate_database()
    import django

    django.setup()
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from incidents.models import ActionItem, Incident, Review
    from incidents.reviews.demo import generate_history
    from opsconsole.models import User
    from opsconsole.roles import Role

    call_command("migrate", verbosity=0)
    for name, role in (("sre", Role.SRE), ("commander", Role.INCIDENT_COMMANDER), ("manager", Role.MANAGER)):
        user = User.objects.create_user(name, password="x")
        user.groups.add(Group.objects.get(name=role.value))
    print(f"Load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    started = time.perf_counter()
    generate_history(incidents=args.incidents, days=args.days)
    elapsed = time.perf_counter() - started
    with connection.cursor() as cursor:  # what autovacuum would do after a bulk load
        cursor.execute("ANALYZE")
    print(
        f"History: {Incident.objects.count()} incidents over {args.days} days, {Review.objects.count()} reviews, "
        f"{ActionItem.objects.count()} action items, generated in {elapsed:.1f} s "
        f"(PostgreSQL {DB_URL.rsplit('/', 1)[-1]})"
    )
    client = Client()
    client.force_login(User.objects.get(username="manager"))
    for label, url in (
        ("manager page, 12 weeks", "/incidents/reviews/"),
        ("manager page, 52 weeks", "/incidents/reviews/?weeks=52"),
        ("manager page, 12 weeks, one service", "/incidents/reviews/?service=postgresql"),
        ("trend CSV (incidents per week, 52 w)", "/incidents/reviews/trends/incidents-per-week.csv?weeks=52"),
    ):
        for _ in range(2):
            assert client.get(url).status_code == 200
        times, cpu, queries, response = timed(lambda url=url: client.get(url), args.repeat)
        assert response.status_code == 200
        report(label, times, cpu, queries)
    review = Review.objects.select_related("incident").order_by("-id").first()
    for label, url in (
        ("review page", f"/incidents/{review.incident.reference}/review/"),
        ("Markdown export", f"/incidents/{review.incident.reference}/review.md"),
    ):
        client.get(url)
        times, cpu, queries, response = timed(lambda url=url: client.get(url), args.repeat)
        assert response.status_code == 200
        report(label, times, cpu, queries)


if __name__ == "__main__":
    main()
