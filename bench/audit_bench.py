"""Audit-log append throughput: `opsconsole.audit.record` in its own
transaction, sequential and from several threads (one connection each).

Each append locks the chain's head row, inserts the row and moves the head
(three statements, as before the head existed: advisory lock, read of the
last row, insert). Prints appends/s and p50/p95 latency, then verifies the
chain (`verify_chain`, head included).

    .venv/bin/python bench/audit_bench.py --appends 2000 --threads 4

Environment: BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/opsconsole_bench_audit; the database is
dropped and re-created).
"""

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/opsconsole_bench_audit")


def recreate_database() -> None:
    import psycopg

    parsed = urlparse(DB_URL)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--appends", type=int, default=2000, help="appends per phase")
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()

    recreate_database()
    os.environ.update(
        DEBUG="false",
        SECRET_KEY="bench-only-secret-key-not-for-production-0123456789abcdef",
        DATABASE_URL=DB_URL,
        LOG_LEVEL="WARNING",
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconsole.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    call_command("migrate", verbosity=0)
    from opsconsole import audit
    from opsconsole.models import AuditEntry, User

    user = User.objects.create_user("bench", password="x")

    def run(count: int, latencies: list[float]) -> None:
        try:
            for n in range(count):
                start = time.perf_counter()
                audit.record(user, "bench.append", user, before={"n": n}, after={"n": n + 1})
                latencies.append(time.perf_counter() - start)
        finally:
            connections.close_all()

    for threads in (1, args.threads):
        latencies: list[float] = []
        per_thread = args.appends // threads
        workers = [threading.Thread(target=run, args=(per_thread, latencies)) for _ in range(threads)]
        start = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - start
        done = per_thread * threads
        ms = sorted(x * 1000 for x in latencies)
        print(
            f"{threads} thread(s): {done} appends in {elapsed:.2f} s = {done / elapsed:.0f} appends/s; "
            f"p50 {statistics.median(ms):.2f} ms, p95 {ms[int(len(ms) * 0.95) - 1]:.2f} ms"
        )
    problems = list(audit.verify_chain())
    print(f"chain: {AuditEntry.objects.count()} rows, {'intact' if not problems else problems[0].message}")


if __name__ == "__main__":
    main()
