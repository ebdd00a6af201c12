"""Health-check throughput, against the real prometheus-blackbox-exporter.

    .venv/bin/python bench/healthchecks_bench.py [--targets 50] [--probes 20000]
        [--checks 10000] [--interval 30] [--duration 90] [--database-url postgres://...]

1. Starts N local HTTP targets (lean epoll servers, in two helper processes:
   bench/servers.py; real targets run elsewhere, their CPU is not the console's).
2. Probes them with the console's batch runner (healthchecks.probes.run_batch)
   in this one process: probes/s.
3. Starts /usr/bin/prometheus-blackbox-exporter with an http_2xx module and
   drives it with concurrent /probe?target=...&module=http_2xx requests
   (from two helper processes, so that the driver is not the bottleneck):
   probes/s, and the ratio console / exporter.
4. Sustained run: --checks HTTP checks at --interval seconds, scheduled and
   written exactly as in production (services.claim_due_checks →
   services.run_checks, i.e. what the beat task and the worker task call),
   by one dispatcher process queueing the leased batches (a multiprocessing
   queue stands in for Celery's) and --workers processes taking them,
   with results persisted to PostgreSQL, for --duration seconds: results
   written per second, how late checks ran, and the CPU each result cost in
   the dispatcher and workers, their PostgreSQL backends and the targets
   (from /proc: a figure the machine's load moves far less).
5. Board server time and query count with those checks (page 1, last
   page, a search, an htmx state filter, a service filter; 100 rows a page).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from common import cpu_seconds, free_port, load_average, next_report, setup_django  # noqa: E402  (bench/ is on sys.path as the script's folder)
from servers import start_http_targets as start_targets  # noqa: E402

# --- console runner ------------------------------------------------------------


def bench_console(ports: list[int], probes: int, concurrency: int) -> tuple[float, int]:
    from healthchecks.probes import ProbeSpec, run_batch

    specs = [
        ProbeSpec(
            check_id=i,
            kind="http",
            timeout=5.0,
            config={
                "url": f"http://127.0.0.1:{ports[i % len(ports)]}/healthz",
                "json_path": "status",
                "json_equals": "healthy",
            },
        )
        for i in range(probes)
    ]

    async def run():
        await run_batch(specs[:500], concurrency=concurrency)  # warm-up
        started = time.perf_counter()
        results = await run_batch(specs, concurrency=concurrency)
        return time.perf_counter() - started, results

    elapsed, results = asyncio.run(run())
    ok = sum(result.state == "ok" for result in results)
    return probes / elapsed, ok


# --- blackbox exporter -----------------------------------------------------------


def _drive_exporter(url_base: str, targets: list[str], count: int, concurrency: int, out) -> None:
    from healthchecks.probes import httpclient

    async def main():
        gate = asyncio.Semaphore(concurrency)
        ok = 0

        async def one(i):
            nonlocal ok
            async with gate:
                response = await httpclient.request(
                    f"{url_base}/probe?module=http_2xx&target={targets[i % len(targets)]}"
                )
                if b"\nprobe_success 1" in response.body:
                    ok += 1

        await asyncio.gather(*(one(i) for i in range(count)))
        return ok

    out.put(asyncio.run(main()))


def bench_exporter(ports: list[int], probes: int, concurrency: int, drivers: int = 2) -> tuple[float, int]:
    folder = Path(tempfile.mkdtemp(prefix="blackbox-"))
    (folder / "blackbox.yml").write_text(
        "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n"
        "      preferred_ip_protocol: ip4\n      valid_status_codes: []\n"
    )
    port = free_port()
    process = subprocess.Popen(
        [
            "/usr/bin/prometheus-blackbox-exporter",
            f"--config.file={folder / 'blackbox.yml'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    targets = [f"http://127.0.0.1:{p}/healthz" for p in ports]
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("blackbox exporter did not start") from None
                time.sleep(0.1)
        warm: multiprocessing.Queue = multiprocessing.Queue()
        _drive_exporter(base, targets, 300, 50, warm)
        out: multiprocessing.Queue = multiprocessing.Queue()
        procs = [
            multiprocessing.Process(
                target=_drive_exporter,
                args=(base, targets, probes // drivers, concurrency // drivers, out),
            )
            for _ in range(drivers)
        ]
        started = time.perf_counter()
        for proc in procs:
            proc.start()
        ok = sum(out.get(timeout=600) for _ in procs)
        elapsed = time.perf_counter() - started
        for proc in procs:
            proc.join()
        return (probes // drivers * drivers) / elapsed, ok
    finally:
        process.terminate()
        process.wait(10)


# --- sustained run with results persisted ------------------------------------------


def bench_sustained(
    ports: list[int],
    checks: int,
    interval: int,
    duration: float,
    tick: float,
    batch_size: int,
    concurrency: int,
    workers: int = 1,
    target_pids: list[int] = (),
) -> dict:
    import datetime

    from django.conf import settings
    from django.utils import timezone

    from healthchecks.models import Check, CheckResult, CheckStateChange
    from opsconsole.models import Service

    settings.HEALTHCHECK_BATCH_SIZE = batch_size
    settings.HEALTHCHECK_CONCURRENCY = concurrency
    Check.objects.filter(service__slug__startswith="bench-").delete()
    service_objs = [
        Service.objects.get_or_create(slug=f"bench-{i:02}", defaults={"name": f"Bench {i:02}"})[0] for i in range(20)
    ]
    now = timezone.now()
    # Spread the first due times over one interval, as a steady state would.
    Check.objects.bulk_create(
        [
            Check(
                service=service_objs[i % len(service_objs)],
                name=f"bench http {i:05}",
                kind="http",
                interval_seconds=interval,
                timeout_seconds=5,
                consecutive_needed=2,
                warning_threshold=2000,
                critical_threshold=5000,
                # Steady state: the checks have run before (so the run
                # measures the recurring load, not 10,000 first results).
                state="ok",
                last_checked_at=now,
                recent_latencies=[1.0] * 20,
                config={
                    "url": f"http://127.0.0.1:{ports[i % len(ports)]}/healthz",
                    "json_path": "status",
                    "json_equals": "healthy",
                },
                next_due_at=now + datetime.timedelta(seconds=interval * i / checks),
            )
            for i in range(checks)
        ],
        batch_size=2000,
    )
    from django.db import connections
    from django.db.models import Count, F

    # Inserting 50,000 checks takes seconds: move their due times by that
    # much, so that the run starts in the steady state (every check due in
    # the next interval), not with a backlog of the seconds the insert took.
    Check.objects.filter(service__in=service_objs).update(next_due_at=F("next_due_at") + (timezone.now() - now))

    # The worker processes are forked: no shared connection, and no shared
    # psycopg pool either (its connections would be used by two processes at
    # once: "connection in transaction status INTRANS").
    connections.close_all()
    for conn in connections.all():
        if getattr(conn, "close_pool", None):
            conn.close_pool()
    context = multiprocessing.get_context("fork")
    out, batches = context.Queue(), context.Queue()
    start = timezone.now()
    started = time.perf_counter()
    targets_cpu = sum(cpu_seconds(pid) for pid in target_pids)
    # As in production: one dispatcher (beat) queues leased batches, the
    # workers (Celery's prefork processes, prefetch 1) take them one at a time.
    procs = [context.Process(target=_dispatcher, args=(duration, tick, batches, workers, out))]
    procs += [context.Process(target=_worker_loop, args=(duration, batches, out)) for _ in range(workers)]
    for proc in procs:
        proc.start()
    reports = [next_report(out, procs, duration + 600) for _ in procs]
    for proc in procs:
        proc.join()
    elapsed = time.perf_counter() - started
    targets_cpu = sum(cpu_seconds(pid) for pid in target_pids) - targets_cpu
    written = CheckResult.objects.filter(checked_at__gte=start, check_ref__service__in=service_objs).count()
    # Steady rate: the run's middle, without the first tick's ramp-up and the
    # batches still queued or probing when the workers stop.
    middle = (start + datetime.timedelta(seconds=10), start + datetime.timedelta(seconds=duration - 5))
    steady = CheckResult.objects.filter(checked_at__range=middle, check_ref__service__in=service_objs).count()
    overdue = Check.objects.filter(
        service__in=service_objs, next_due_at__lt=timezone.now() - datetime.timedelta(seconds=10)
    ).count()
    states = dict(
        Check.objects.filter(service__in=service_objs).values_list("state").annotate(n=Count("id")).order_by()
    )
    changes = CheckStateChange.objects.filter(check_ref__service__in=service_objs).count()
    lateness = [x for report in reports for x in report["lateness"]]
    return {
        "elapsed": elapsed,
        "written": written,
        "per_second": written / elapsed,
        "steady_per_second": steady / max(1.0, duration - 15),
        "batches": sum(r["batches"] for r in reports),
        "batch_seconds": sum(r["busy"] for r in reports),
        "write_seconds": sum(r["write"] for r in reports),
        "overdue": overdue,
        "states": states,
        "state_changes": changes,
        # CPU seconds per result, wherever it was spent: what the machine's
        # 2 cores can sustain whatever else runs on it.
        "cpu_workers": sum(r["cpu"] for r in reports),
        "cpu_database": sum(r["db_cpu"] for r in reports),
        "cpu_targets": targets_cpu,
        "lateness_p50": statistics.median(lateness) if lateness else 0.0,
        "lateness_max": max(lateness) if lateness else 0.0,
    }


def _backend_and_cpu() -> tuple[int, float, float]:
    """This process's PostgreSQL backend, its CPU and ours so far (the bench
    runs on PostgreSQL's host: the backend's CPU is in /proc)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    return backend, cpu_seconds(backend), time.process_time()


def _dispatcher(duration: float, tick: float, batches: multiprocessing.Queue, workers: int, out) -> None:
    """What beat's dispatch_due_checks does every tick: lease due checks and
    queue one batch per claim."""
    from healthchecks import services

    backend, db_cpu, cpu = _backend_and_cpu()
    started = time.perf_counter()
    while time.perf_counter() - started < duration:
        tick_started = time.perf_counter()
        for claim in services.claim_due_checks():
            batches.put((claim.check_ids, claim.token, claim.due_at))
        time.sleep(max(0.0, tick - (time.perf_counter() - tick_started)))
    for _ in range(workers):
        batches.put(None)
    # Batches the workers leave at the end stay unread: exit without waiting
    # for them to be flushed to the pipe (that wait would never end).
    batches.cancel_join_thread()
    cpu, db_cpu = time.process_time() - cpu, cpu_seconds(backend) - db_cpu
    out.put(dict(batches=0, lateness=[], busy=0.0, write=0.0, cpu=cpu, db_cpu=db_cpu))


def _worker_loop(duration: float, batches: multiprocessing.Queue, out: multiprocessing.Queue) -> None:
    """One worker process: what the batch task does (probe a leased batch,
    write the results), batch after batch, until the run ends."""
    import queue

    from django.utils import timezone

    from healthchecks import services
    from healthchecks.services import results as results_module

    write_time = [0.0]
    original = results_module.record_results

    def timed_record_results(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            write_time[0] += time.perf_counter() - t0

    # run_checks calls the module's global: patch it where it is looked up.
    results_module.record_results = timed_record_results
    backend, db_cpu, cpu = _backend_and_cpu()
    deadline = time.perf_counter() + duration
    done, lateness, busy = 0, [], 0.0
    while (left := deadline - time.perf_counter()) > 0:
        try:
            item = batches.get(timeout=left)
        except queue.Empty:
            break
        if item is None:
            break
        check_ids, token, due_at = item
        # Lateness = when the probe batch starts − when the check was due.
        started_at = timezone.now()
        lateness.extend((started_at - d).total_seconds() for d in due_at if d)
        t0 = time.perf_counter()
        services.run_checks(check_ids, lease_token=token)
        busy += time.perf_counter() - t0
        done += 1
    cpu, db_cpu = time.process_time() - cpu, cpu_seconds(backend) - db_cpu
    out.put(dict(batches=done, lateness=lateness, busy=busy, write=write_time[0], cpu=cpu, db_cpu=db_cpu))


def bench_board() -> tuple[dict[str, tuple[float, int]], int]:
    """Server time of the board (best of 5) and its query count: page 1
    (worst first), the last page, a text search, an htmx state filter and a
    service filter."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from healthchecks.models import Check
    from opsconsole.models import User

    user, _ = User.objects.get_or_create(username="bench-viewer")
    user.is_superuser = True
    user.save()
    client = Client()
    client.force_login(user)
    # The sustained run deleted the previous run's checks and rewrote every
    # row many times: let PostgreSQL clean up as autovacuum does in a steady
    # state, so the figure is the board's, not that of a bloated table.
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {Check._meta.db_table}")
    client.get("/health/")
    total = Check.objects.count()
    views = {
        "page 1": ({}, {}),
        "last page": ({"page": str(max(1, (total + 99) // 100))}, {}),
        "search 'http 0042'": ({"q": "http 0042"}, {}),
        "htmx state=ok": ({"state": "ok"}, {"HX-Request": "true"}),
        "service=bench-03": ({"service": "bench-03"}, {}),
    }
    timings: dict[str, tuple[float, int]] = {}
    for label, (params, headers) in views.items():
        best = float("inf")
        for _ in range(5):
            with CaptureQueriesContext(connection) as queries:
                t0 = time.perf_counter()
                response = client.get("/health/", params, headers=headers)
                best = min(best, time.perf_counter() - t0)
            assert response.status_code == 200
        timings[label] = (best, len(queries))
    return timings, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", type=int, default=50)
    parser.add_argument("--probes", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--checks", type=int, default=10000)
    parser.add_argument("--interval", type=int, default=30)
    parser.add_argument("--duration", type=float, default=90)
    parser.add_argument("--tick", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--workers", type=int, default=1, help="worker processes in the sustained run")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/opsconsole_healthbench")
    parser.add_argument("--skip-sustained", action="store_true")
    parser.add_argument("--skip-compare", action="store_true", help="only the sustained run")
    args = parser.parse_args()

    ports, procs = start_targets(args.targets)
    print(f"targets: {len(ports)} HTTP servers in {len(procs)} processes; load average {load_average()}")
    try:
        # Settings are read by the probes too (the target policy), not only by
        # the sustained run: set them before the first probe.
        os.environ.setdefault("DEBUG", "false")
        os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789abcdef")
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconsole.settings")
        os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1")
        # Before the first probe too: the probes load the settings, which
        # read DATABASE_URL once (unset, the sustained run fell back to SQLite).
        os.environ["DATABASE_URL"] = args.database_url
        if not args.skip_compare:
            console_rate, console_ok = bench_console(ports, args.probes, args.concurrency)
            print(
                f"console batch runner (1 process, concurrency {args.concurrency}): "
                f"{console_rate:,.0f} probes/s ({console_ok}/{args.probes} ok)"
            )
            exporter_rate, exporter_ok = bench_exporter(ports, args.probes, args.concurrency)
            print(f"blackbox_exporter 0.23 (driven by 2 processes): {exporter_rate:,.0f} probes/s ({exporter_ok} ok)")
            print(f"ratio console / exporter: {console_rate / exporter_rate:.2f}")
        if args.skip_sustained:
            return
        setup_django(args.database_url)
        need = args.checks / args.interval
        print(
            f"sustained: {args.checks} checks every {args.interval}s = "
            f"{need:,.0f} results/s needed, "
            f"{args.duration:.0f}s run, dispatch every {args.tick}s, batches of {args.batch_size}, "
            f"concurrency {args.concurrency}, {args.workers} worker process(es) ..."
        )
        report = bench_sustained(
            ports,
            args.checks,
            args.interval,
            args.duration,
            args.tick,
            args.batch_size,
            args.concurrency,
            args.workers,
            [proc.pid for proc in procs],
        )
        print(
            f"  written: {report['written']:,} results in {report['elapsed']:.1f}s = "
            f"{report['per_second']:,.0f} results/s (from 10 s to 5 s before the end: "
            f"{report['steady_per_second']:,.0f}/s; {report['batches']} batches, "
            f"{report['batch_seconds']:.1f}s busy = "
            f"{100 * report['batch_seconds'] / report['elapsed'] / args.workers:.0f}% "
            f"of the worker process(es); of which writing results {report['write_seconds']:.1f}s)"
        )
        print(
            f"  lateness (claim time − due time): median {report['lateness_p50']:.2f}s, "
            f"max {report['lateness_max']:.2f}s; unclaimed and overdue >10s at the end: {report['overdue']} "
            "(a backlog waits leased in the queue: see the lateness)"
        )
        print(f"  states: {report['states']}, state changes: {report['state_changes']}")
        per_result = {
            key: 1000 * report[f"cpu_{key}"] / max(1, report["written"]) for key in ("workers", "database", "targets")
        }
        total = sum(per_result.values())
        print(
            "  CPU per result: "
            + ", ".join(f"{key} {ms:.3f} ms" for key, ms in per_result.items()).replace("workers", "dispatcher+workers")
            + f"; total {total:.3f} ms = at most {2000 / total:,.0f} results/s on 2 idle cores"
        )
        print(f"  load average after the run: {load_average()}")
        timings, total = bench_board()
        print(f"board /health/ with {total:,} checks, server time (best of 5) and queries:")
        for label, (seconds, queries) in timings.items():
            print(f"  {label}: {seconds * 1000:.0f} ms, {queries} queries")
        print(f"  load average: {load_average()}")
    finally:
        for proc in procs:
            proc.terminate()


if __name__ == "__main__":
    main()
