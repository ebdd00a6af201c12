"""Notification throughput and the dead-letter page, on PostgreSQL + Redis.

    .venv/bin/python bench/notifications_bench.py [--deliveries 500] [--concurrency 2]
        [--database-url postgres://postgres@127.0.0.1:5432/opsconsole_bench_notify]
        [--redis-url redis://127.0.0.1:6379/2] [--dead 1000]

1. notify(): deliveries created per second inside a caller's transaction
   (one webhook + two emails per call).
2. End to end through a real Celery worker (a `celery worker` subprocess on
   the notifications queue, prefork with --concurrency) posting to a local
   HTTP server: deliveries sent per second draining a backlog, then the
   p50/p95 latency from the caller's commit to the receiver getting the post
   for notifications sent one at a time (10 per second) to a running worker.
3. With --dead dead letters: the dead-letter page's server time and query
   count, and the dashboard's.

The database is created (and migrated) if missing; it is a bench database,
not the development one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from common import ROOT, percentile


class _Receiver:
    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.arrivals[body["text"].split("\n", 1)[0]] = time.perf_counter()
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--dead", type=int, default=1000)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/opsconsole_bench_notify")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/2")
    args = parser.parse_args()

    receiver = _Receiver()
    env = {
        "DEBUG": "true",
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "CELERY_BROKER_URL": args.redis_url,
        "NOTIFY_WEBHOOK_URL": receiver.url,
        "NOTIFY_BACKOFF_SECONDS": "0.5",
        "EMAIL_URL": "dummymail://",
        "LOG_LEVEL": "WARNING",
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
    }
    os.environ.update(env)
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconsole.settings")
    dbname = args.database_url.rsplit("/", 1)[1]
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", dbname], capture_output=True)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from notifications import services as notifications
    from notifications.models import Delivery
    from opsconsole.models import User
    from opsconsole.roles import Role

    call_command("migrate", verbosity=0)
    Delivery.objects.all().delete()
    print(f"database {dbname}, broker {args.redis_url}, webhook receiver {receiver.url}")

    # 1. notify() inside a transaction (deliveries are queued on commit: the
    # worker is not running yet, so this measures the write and the publish).
    import redis

    broker = redis.Redis.from_url(args.redis_url)
    broker.delete("notifications")
    calls = max(1, args.deliveries // 3)
    started = time.perf_counter()
    for i in range(calls):
        with transaction.atomic():
            notifications.notify(
                event="bench",
                title=f"bench-{i}",
                text="x",
                emails=[f"a{i}@example.com", f"b{i}@example.com"],
            )
    elapsed = time.perf_counter() - started
    created = Delivery.objects.count()
    print(
        f"notify(): {created} deliveries in {elapsed:.2f} s = {created / elapsed:.0f} deliveries/s "
        f"({elapsed / calls * 1000:.2f} ms per call with 3 targets, commit and publish included)"
    )

    # 2. A real worker drains the queue.
    worker = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/celery"),
            "-A",
            "opsconsole",
            "worker",
            "--queues",
            "notifications",
            "--concurrency",
            str(args.concurrency),
            "--loglevel",
            "WARNING",
            "--without-mingle",
            "--without-gossip",
            "--hostname",
            f"bench-notify-{os.getpid()}@%h",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        worker_start = time.perf_counter()
        deadline = worker_start + 300
        while time.perf_counter() < deadline:
            pending = Delivery.objects.exclude(status=Delivery.Status.SENT).count()
            if pending == 0:
                break
            time.sleep(0.2)
        drained = time.perf_counter()
        sent = Delivery.objects.filter(status=Delivery.Status.SENT).count()
        first_arrival = min(receiver.arrivals.values()) if receiver.arrivals else drained
        span = drained - first_arrival
        print(
            f"worker (--concurrency {args.concurrency}): {sent}/{created} sent; "
            f"{sent / span:.0f} deliveries/s (first arrival → last sent: {span:.2f} s), "
            f"worker start-up {first_arrival - worker_start:.2f} s"
        )
        webhooks = Delivery.objects.filter(channel="webhook", status="sent").count()
        print(f"webhook posts received: {len(receiver.arrivals)} (expected {webhooks}, once each)")

        latencies = []
        for i in range(100):
            title = f"latency-{i}"
            with transaction.atomic():
                notifications.notify(event="bench", title=title, text="x")
            committed = time.perf_counter()
            while title not in receiver.arrivals and time.perf_counter() - committed < 10:
                time.sleep(0.001)
            latencies.append((receiver.arrivals.get(title, time.perf_counter()) - committed) * 1000)
            time.sleep(max(0.0, 0.1 - (time.perf_counter() - committed)))
        print(
            f"commit → webhook received, one at a time: p50 {statistics.median(latencies):.1f} ms, "
            f"p95 {percentile(latencies, 95):.1f} ms, max {max(latencies):.1f} ms"
        )
    finally:
        worker.terminate()
        worker.wait(timeout=30)

    # 3. Pages with many dead letters.
    Delivery.objects.bulk_create(
        [
            Delivery(
                channel="webhook",
                target=receiver.url,
                event="bench.dead",
                payload={"text": "x" * 200},
                status=Delivery.Status.DEAD,
                attempts=5,
                last_error="HTTP 500: upstream (gave up)",
            )
            for _ in range(args.dead)
        ]
    )
    user, _ = User.objects.get_or_create(username="bench-sre")
    from django.contrib.auth.models import Group

    user.groups.add(Group.objects.get(name=Role.SRE.value))
    client = Client()
    client.force_login(user)
    for path in ("/notifications/dead-letters/", "/"):
        client.get(path)  # warm up
        timings = []
        for _ in range(10):
            with CaptureQueriesContext(connection) as queries:
                t0 = time.perf_counter()
                response = client.get(path)
                timings.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, response.status_code
        print(
            f"GET {path} with {args.dead} dead letters: p50 {statistics.median(timings):.1f} ms, "
            f"p95 {percentile(timings, 95):.1f} ms, {len(queries)} queries"
        )
    receiver.server.shutdown()


if __name__ == "__main__":
    main()
