"""Real servers for benches and tests: gunicorn running the console, the
Prometheus Alertmanager binary routing alerts to its webhook, and the
health-check bench's HTTP probe targets.

Both listen on free ports on 127.0.0.1 and are stopped by their context
managers. Used by bench/alert_storm_bench.py and the tests that need the
same processes (tests/incidents/test_alert_storm.py,
tests/opsconsole/test_database_pool.py).
"""

import contextlib
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
from bench.common import free_port, wait_for  # noqa: E402  (re-exported for the tests that start these servers)

ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None, timeout: float = 30):
    """(status, headers, body) of one request; HTTP errors are answers, not exceptions."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # nosec B310  # 127.0.0.1 test servers
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


_SERVED: dict[str, int] = {}  # base URL → gunicorn master's pid


def cpu_seconds(base: str) -> float:
    """CPU time (user + system) used so far by the gunicorn serving `base`:
    its master and its live workers, from /proc (Linux). A figure that other
    work on the machine does not inflate, unlike wall time."""
    pids = [_SERVED[base]]
    try:
        children = Path(f"/proc/{pids[0]}/task/{pids[0]}/children").read_text().split()
    except OSError:
        children = []
    pids += [int(pid) for pid in children]
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


@contextlib.contextmanager
def gunicorn(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """gunicorn -c gunicorn.conf.py with `env` (a PORT is chosen here); yields its base URL."""
    port = free_port()
    env = {**env, "HOST": "127.0.0.1", "PORT": str(port)}
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(log_path.parent / f"prometheus-{port}"))
    with open(log_path, "w+") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            if process.poll() is not None:
                log.seek(0)
                raise AssertionError(f"gunicorn exited:\n{log.read()[-4000:]}")
            try:
                return http("GET", f"{base}/livez", timeout=2)[0] == 200
            except OSError:
                return False

        try:
            wait_for(up, 60, "gunicorn to start")
            _SERVED[base] = process.pid
            yield base
        finally:
            _SERVED.pop(base, None)
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@contextlib.contextmanager
def alertmanager(
    webhook_url: str, token: str, workdir: Path, *, group_by=("alertname",), group_interval: str = "2s"
) -> Iterator[str]:
    """The real Alertmanager, one route to the console's webhook; yields its base URL.

    `group_interval` is also how long Alertmanager lets a delivery take (at
    least 10 s) before it cancels it and tries again: the tests keep 2 s so
    that resolves follow within seconds; the storm bench uses a production
    value (docs/incidents.md)."""
    port = free_port()
    config = {
        "route": {
            "receiver": "console",
            "group_by": list(group_by),
            "group_wait": "1s",
            "group_interval": group_interval,
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "console",
                "webhook_configs": [
                    {
                        "url": webhook_url,
                        "send_resolved": True,
                        "http_config": {"authorization": {"type": "Bearer", "credentials": token}},
                    }
                ],
            }
        ],
    }
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "alertmanager.yml").write_text(json.dumps(config))  # JSON is YAML
    with open(workdir / "alertmanager.log", "w+") as log:
        process = subprocess.Popen(
            [
                ALERTMANAGER,
                f"--config.file={workdir / 'alertmanager.yml'}",
                f"--storage.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            if process.poll() is not None:
                log.seek(0)
                raise AssertionError(f"alertmanager exited:\n{log.read()}")
            try:
                return http("GET", f"{base}/-/ready", timeout=1)[0] == 200
            except OSError:
                return False

        try:
            wait_for(ready, 30, "alertmanager to start")
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def push_alerts(base: str, alerts: list[dict], batch: int = 1000) -> None:
    """POST alerts to Alertmanager's v2 API, `batch` per request."""
    for start in range(0, len(alerts), batch):
        body = json.dumps(alerts[start : start + batch]).encode()
        status, _, text = http("POST", f"{base}/api/v2/alerts", body, {"Content-Type": "application/json"}, timeout=30)
        if status != 200:
            raise AssertionError(f"alertmanager refused alerts: {status} {text[:300]!r}")


def storm_alerts(groups: int, per_group: int, starts_at: str, ends_at: str, prefix: str = "Storm") -> list[dict]:
    """groups x per_group alerts; Alertmanager groups them by alertname (one group each)."""
    return [
        {
            "labels": {
                "alertname": f"{prefix}{group}",
                "severity": ("critical", "high", "medium", "low")[group % 4],
                "instance": f"node-{n}",
                "service": "message-queue",
            },
            "annotations": {"summary": f"{prefix} group {group}"},
            "startsAt": starts_at,
            "endsAt": ends_at,
        }
        for group in range(groups)
        for n in range(per_group)
    ]


def process_env(database_url: str, redis_url: str, **overrides: str) -> dict[str, str]:
    """A production process's environment (DEBUG off) on the given database."""
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": "bench-only-secret-key-not-for-production-0123456789abcdef",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": "",
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "METRICS_TOKEN": "",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.update(overrides)
    return env


# --- probe targets (bench/healthchecks_bench.py) -------------------------------------

BODY = b'{"status":"healthy"}'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(BODY)).encode()
    + b"\r\nConnection: close\r\n\r\n"
    + BODY
)


def _serve_targets(count: int, ports: multiprocessing.Queue) -> None:
    """`count` listening sockets served by one epoll loop: accept, read the
    request head, answer, close.

    Real HTTP/1.1 over TCP, but as lean as a server can be in Python (an
    asyncio server cost 0.15 – 0.2 ms of CPU per probe, a quarter of the
    bench's total; real targets run on other machines, so their CPU was
    never the console's): TCP_DEFER_ACCEPT, as nginx's `deferred`, wakes
    the loop only once the request has arrived, so nearly every connection
    is accepted, read, answered and closed in one pass, with raw file
    descriptors and no per-connection object or registration. A request
    that arrives in pieces waits in epoll like any server's.
    """
    import select
    import socket

    epoll = select.epoll()
    listeners: dict[int, socket.socket] = {}
    for _ in range(count):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 5)
        listener.bind(("127.0.0.1", 0))
        listener.listen(4096)
        listener.setblocking(False)
        epoll.register(listener.fileno(), select.EPOLLIN)
        listeners[listener.fileno()] = listener
        ports.put(listener.getsockname()[1])
    partial: dict[int, bytes] = {}  # connections whose request head is not complete yet

    def serve(fd: int, head: bytes) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            data = None
        except OSError:
            data = b""
        if data is None or (data and b"\r\n\r\n" not in head + data):
            if fd not in partial:
                epoll.register(fd, select.EPOLLIN)
            partial[fd] = head + (data or b"")
            return
        if fd in partial:
            del partial[fd]
            epoll.unregister(fd)
        if data:
            try:
                os.write(fd, RESPONSE)  # far less than a socket buffer: written whole
            except OSError:
                pass  # the client gave up
        os.close(fd)

    while True:
        for fd, _events in epoll.poll():
            listener = listeners.get(fd)
            if listener is None:
                serve(fd, partial.get(fd, b""))
                continue
            while True:
                try:
                    conn, _ = listener._accept()  # a bare descriptor: no socket object per connection
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break  # out of descriptors, aborted by the client: the next poll retries
                os.set_blocking(conn, False)
                serve(conn, b"")


def start_http_targets(n: int, processes: int = 2) -> tuple[list[int], list[multiprocessing.Process]]:
    """n HTTP servers answering `{"status":"healthy"}` and closing (an epoll loop per process), in
    `processes` processes (bench/healthchecks_bench.py's probe targets):
    their ports and processes."""
    queue: multiprocessing.Queue = multiprocessing.Queue()
    procs = []
    for i in range(processes):
        count = n // processes + (1 if i < n % processes else 0)
        proc = multiprocessing.Process(target=_serve_targets, args=(count, queue), daemon=True)
        proc.start()
        procs.append(proc)
    return [queue.get(timeout=30) for _ in range(n)], procs
