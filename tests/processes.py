"""Helpers for tests that start real processes (gunicorn, Celery worker,
manage.py) against the test database and Redis."""

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from django.conf import settings

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def subprocess_database_url() -> str:
    """pytest-django's test database (use with transactional_db so that the
    other process sees committed rows)."""
    db = settings.DATABASES["default"]
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return f"postgres://{db['USER']}{password}@{host}/{db['NAME']}"


def production_env(**overrides: str) -> dict[str, str]:
    """The environment of a production process on the test database and Redis."""
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": subprocess_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
    }
    # Set for Playwright in this process; a deploy check refuses it.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.update(overrides)
    return env


def wait_until(predicate: Callable[[], T], timeout: float = 30.0, what: str = "condition", interval: float = 0.1) -> T:
    """Poll until `predicate()` is truthy and return its value; fail the test
    saying what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def start_celery_worker(
    queue: str, *, pool: str = "solo", concurrency: int = 1, env: dict[str, str] | None = None, **popen_kwargs
) -> subprocess.Popen:
    """A real `celery worker` on the test broker, consuming only `queue` (a
    queue of the test's own, so parallel test workers never share tasks)."""
    command = [sys.executable, "-m", "celery", "-A", "opsconsole", "worker", "-Q", queue, "--pool", pool]
    if pool == "prefork":
        command += ["--concurrency", str(concurrency)]
    command += ["--loglevel", "WARNING", "--without-heartbeat", "--without-mingle", "--without-gossip"]
    popen_kwargs.setdefault("stdout", subprocess.DEVNULL)
    popen_kwargs.setdefault("stderr", subprocess.DEVNULL)
    return subprocess.Popen(command, cwd=ROOT, env=env or production_env(), **popen_kwargs)
