"""What every bench script shares, written once: the environment of an
in-process Django run on a bench database that is dropped and re-created,
timing with query counts, percentiles and free ports.

A bench script starts with

    from common import bench_settings   # bench/ is on sys.path when run as a script
    DB_URL = bench_settings("opsconsole_bench_NAME", redis_db=N)

before anything imports Django, then calls `setup_django(DB_URL)`.
"""

import multiprocessing
import os
import queue
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Not a secret: bench databases are thrown away after every run.
BENCH_SECRET_KEY = "bench-only-secret-key-not-for-production-0123456789abcdef"  # nosec B105


def bench_settings(database: str, *, redis_db: int, eager: bool = True, **overrides: str) -> str:
    """Point Django at a bench database (BENCH_DATABASE_URL overrides the
    default name) and return its URL. Notifications go nowhere and Celery
    tasks run in-process unless `eager` is false."""
    db_url = os.environ.get("BENCH_DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{database}")
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "opsconsole.settings",
            "DEBUG": "false",
            "SECRET_KEY": BENCH_SECRET_KEY,
            "DATABASE_URL": db_url,
            "REDIS_URL": os.environ.get("BENCH_REDIS_URL", f"redis://127.0.0.1:6379/{redis_db}"),
            "CELERY_BROKER_URL": "",
            "CELERY_TASK_ALWAYS_EAGER": "true" if eager else "false",
            "METRICS_TOKEN": "",
            "PROMETHEUS_MULTIPROC_DIR": "",
            "LOG_LEVEL": "WARNING",
            "ALLOWED_HOSTS": "testserver,127.0.0.1",
            "NOTIFY_WEBHOOK_URL": "",
            **overrides,
        }
    )
    return db_url


def recreate_database(db_url: str) -> None:
    import psycopg

    parsed = urlparse(db_url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(db_url: str, *, recreate: bool = True) -> None:
    """Re-create (unless told not to) and migrate the bench database, then set Django up."""
    if recreate:
        recreate_database(db_url)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used (from /proc), 0 if it is gone:
    a bench can add up the CPU of processes it did not start (a PostgreSQL
    backend, a target server), which the machine's load moves far less than
    wall time."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def wait_for(predicate: Callable[[], object], timeout: float, what: str):
    """Poll until `predicate()` is truthy and return its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0–100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


@dataclass
class Timing:
    """Wall and CPU milliseconds and SQL statements per call of a timed function."""

    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    queries: list[int] = field(default_factory=list)
    last: object = None

    def line(self, label: str, width: int = 34) -> str:
        return (
            f"  {label:<{width}} p50 {statistics.median(self.times):7.1f} ms   "
            f"p95 {percentile(self.times, 95):7.1f} ms   max {max(self.times):7.1f} ms   "
            f"cpu p50 {statistics.median(self.cpu):6.1f} ms   queries {min(self.queries)}–{max(self.queries)}"
        )


def timed(fn: Callable[[], object], repeat: int) -> Timing:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    timing = Timing()
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as ctx:
            started, started_cpu = time.perf_counter(), time.process_time()
            timing.last = fn()
            timing.times.append((time.perf_counter() - started) * 1000)
            timing.cpu.append((time.process_time() - started_cpu) * 1000)
        timing.queries.append(len(ctx.captured_queries))
    return timing


def start_gunicorn(env: dict[str, str], workers: int, port: int, *, quiet: bool = False) -> subprocess.Popen:
    """gunicorn serving the console on 127.0.0.1:`port` in a session of its own
    (stop it with os.killpg), once it accepts connections."""
    command = [sys.executable, "-m", "gunicorn", "opsconsole.wsgi:application", "--workers", str(workers)]
    command += ["--bind", f"127.0.0.1:{port}", "--log-level", "warning", "--access-logfile", "/dev/null"]
    output = subprocess.DEVNULL if quiet else None
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True, stdout=output, stderr=output)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("gunicorn did not start within 30 s")


def next_report(out: multiprocessing.Queue, procs: list[multiprocessing.Process], timeout: float) -> dict:
    """The next process's report; fails at once if one of them died (rather
    than waiting out the timeout for a report that will never come)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return out.get(timeout=1)
        except queue.Empty:
            dead = [proc for proc in procs if proc.exitcode not in (None, 0)]
            if dead or time.monotonic() > deadline:
                raise SystemExit(f"a bench process failed: {[proc.exitcode for proc in dead] or 'timed out'}") from None
