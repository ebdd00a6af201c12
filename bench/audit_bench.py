"""Audit-log append throughput: `opsconsole.audit.record` in a transaction
of its own, sequential and from several threads (one connection each), with
one stream (the single chain the log used to be) and with AUDIT_STREAMS
streams, side by side in the same run.

Each append locks a stream's head row, inserts the row and moves the head
(three statements). The head stays locked until the transaction commits, so
`--work-ms` adds that much database work (pg_sleep) after the append inside
the same transaction, as a service transaction does: with one stream every
other writer waits for it, with several they do not. Prints appends/s and
p50/p95 latency, then verifies every chain (`verify_chain`, heads included).

    .venv/bin/python bench/audit_bench.py --appends 2000 --threads 4 --work-ms 2

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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import recreate_database  # noqa: E402

DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/opsconsole_bench_audit")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--appends", type=int, default=2000, help="appends per phase")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--streams", type=int, default=8, help="AUDIT_STREAMS of the second configuration")
    parser.add_argument("--work-ms", type=float, default=2.0, help="work inside each transaction after the append")
    args = parser.parse_args()

    recreate_database(DB_URL)
    os.environ.update(
        DEBUG="false",
        SECRET_KEY="bench-only-secret-key-not-for-production-0123456789abcdef",
        DATABASE_URL=DB_URL,
        LOG_LEVEL="WARNING",
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconsole.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection, connections, transaction

    call_command("migrate", verbosity=0)
    from opsconsole import audit, audit_verify
    from opsconsole.models import AuditEntry, User

    user = User.objects.create_user("bench", password="x")

    def run(count: int, latencies: list[float]) -> None:
        try:
            for n in range(count):
                start = time.perf_counter()
                with transaction.atomic():
                    audit.record(user, "bench.append", user, before={"n": n}, after={"n": n + 1})
                    if args.work_ms:
                        with connection.cursor() as cursor:
                            cursor.execute("SELECT pg_sleep(%s)", [args.work_ms / 1000])
                latencies.append(time.perf_counter() - start)
        finally:
            connections.close_all()

    print(f"{args.appends} appends per phase, {args.work_ms:g} ms of work after each append in its transaction")
    for streams, threads in ((1, 1), (1, args.threads), (args.streams, 1), (args.streams, args.threads)):
        settings.AUDIT_STREAMS = streams
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
            f"{streams} stream(s), {threads} thread(s): {done} appends in {elapsed:.2f} s = "
            f"{done / elapsed:.0f} appends/s; p50 {statistics.median(ms):.2f} ms, "
            f"p95 {ms[int(len(ms) * 0.95) - 1]:.2f} ms"
        )
    problems = list(audit_verify.verify_chain())
    used = AuditEntry.objects.values("stream").distinct().count()
    print(
        f"chains: {AuditEntry.objects.count()} rows in {used} streams, "
        f"{'intact' if not problems else problems[0].message}"
    )


if __name__ == "__main__":
    main()
