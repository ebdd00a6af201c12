"""Helpers for the fault tests (test_faults_*.py): private Redis and
PostgreSQL servers a test may stop and restart without touching the shared
ones, and a signed-in HTTP client for a live gunicorn."""

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import redis

from bench.servers import free_port, wait_for

PG_BIN = Path("/usr/lib/postgresql/15/bin")
CSRF_RE = re.compile(r'"X-CSRFToken": "([^"]+)"')


class PrivateRedis:
    """redis-server on a free port, in the foreground, no persistence."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            + ["--daemonize", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, 15, "redis-server to start")

    def _answers(self) -> bool:
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        try:
            return client.ping()
        except redis.RedisError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)
        self.process = None


@contextlib.contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _as_postgres(*command: str) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the postgres user."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


class PrivatePostgres:
    """A throwaway PostgreSQL cluster (initdb) on a free port: restarted by a
    test without touching the shared one."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="oc-faults-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")

    def init_and_start(self) -> None:
        subprocess.run(
            _as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N"),
            check=True,
            capture_output=True,
        )
        self.pg_ctl("start", "-w", "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off")

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(
            _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"), *args),
            check=True,
            capture_output=True,
            timeout=60,
        )

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self.pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.init_and_start()
        yield server
    finally:
        server.destroy()


def session_for(user) -> str:
    """A database session signed in as `user` (the gunicorn must share this
    process's SECRET_KEY: the session carries the user's auth hash)."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    from opsconsole.sessions import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


def signed_in_client(base: str, session_key: str, page: str) -> httpx.Client:
    """An httpx client with the session cookie and the CSRF token `page` hands out."""
    client = httpx.Client(base_url=base, timeout=30, cookies={"sessionid": session_key})
    response = client.get(page)
    assert response.status_code == 200, (response.status_code, response.text[:500])
    match = CSRF_RE.search(response.text)
    assert match, "no CSRF token on the page"
    # The cookies are Secure (DEBUG off) and this is plain HTTP on 127.0.0.1:
    # hand them back by hand, as a browser behind TLS would.
    csrf_cookie = response.cookies.get("csrftoken") or client.cookies.get("csrftoken")
    assert csrf_cookie, "no CSRF cookie"
    client.cookies = httpx.Cookies({"sessionid": session_key, "csrftoken": csrf_cookie})
    client.headers["X-CSRFToken"] = match.group(1)
    return client
