"""Shared test fixtures.

The suite runs on real PostgreSQL and Redis (see Makefile: `make test`). If
either does not answer, the run stops at once, saying which and how to start it.
"""

import copy
import functools
import os
import socket
import uuid
from urllib.parse import urlparse

import pytest
from django.contrib.auth.models import Group

from opsconsole.roles import Role

START_HINTS = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "Redis": 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no',
}


def _answers(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def pytest_sessionstart(session):
    from django.conf import settings

    problems = []
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        problems.append("DATABASE_URL does not point at PostgreSQL (run the suite with `make test`).")
    elif not _answers(f"postgres://{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}", 5432):
        problems.append(
            f"PostgreSQL does not answer at {db.get('HOST')}:{db.get('PORT')}. Start it: {START_HINTS['PostgreSQL']}"
        )
    redis_url = settings.REDIS_URL
    if not redis_url:
        problems.append("REDIS_URL is not set (run the suite with `make test`).")
    elif not _answers(redis_url, 6379):
        problems.append(f"Redis does not answer at {redis_url}. Start it: {START_HINTS['Redis']}")
    if problems:
        pytest.exit("Test services are missing:\n  " + "\n  ".join(problems), returncode=3)


@pytest.fixture(autouse=True)
def _severity_table(request):
    """The SEV table and alert mappings as migration incidents 0002 seeds them.

    The application never re-creates them on a request or an alert; a
    transactional test's flush empties every table, so every database test
    gets them back here first (one COUNT when they are there)."""
    if request.node.get_closest_marker("django_db") is None and not {"db", "transactional_db"} & set(
        request.fixturenames
    ):
        return
    # Autouse fixtures run before the test's own ones: open database access here
    # (pytest-django's helper honours the marker and transactional fixtures).
    request.getfixturevalue("_django_db_helper")
    from incidents.services import ensure_defaults

    ensure_defaults()


@pytest.fixture(autouse=True)
def _eager_celery():
    """Tasks run in-process by default; tests about queues start a real worker
    (celery.contrib.testing.worker.start_worker, e.g. tests/notifications/test_worker.py)
    and switch this off."""
    from opsconsole.celery import app

    previous = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = previous


@pytest.fixture(autouse=True)
def _private_cache_namespace(settings):
    """Each test gets its own cache key prefix in the shared Redis: rate-limit
    counters (allauth counts failed sign-ins per address and account) must not
    leak between tests, parallel workers, or runs a few minutes apart."""
    caches = copy.deepcopy(settings.CACHES)
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    for alias in caches.values():
        alias["KEY_PREFIX"] = prefix
    settings.CACHES = caches


@functools.cache
def _test_password_hash() -> str:
    from django.contrib.auth.hashers import make_password

    return make_password("pw-for-tests-1")


@pytest.fixture
def make_user(db, django_user_model):
    """make_user(Role.SRE) → a user holding that role (or none with role=None)."""
    counter = {"n": 0}

    def make(role: Role | None = Role.VIEWER, **fields):
        counter["n"] += 1
        username = fields.pop("username", f"{(role or 'norole').replace(' ', '_').lower()}{counter['n']}")
        user = django_user_model.objects.create_user(username=username, password=None, **fields)
        # The real hasher, run once per session: hashing per user made tests that
        # create hundreds of people spend most of their time in PBKDF2.
        user.password = _test_password_hash()
        user.save(update_fields=["password"])
        if role is not None:
            # get_or_create: a transactional test's flush removes migration 0002's groups.
            user.groups.add(Group.objects.get_or_create(name=role.value)[0])
        return user

    return make


@pytest.fixture
def client_as(client, make_user):
    """client_as(Role.MANAGER) → the test client signed in as a new user with that role."""

    def login(role: Role | None = Role.VIEWER, **fields):
        user = make_user(role, **fields)
        client.force_login(user)
        client.user = user
        return client

    return login


@pytest.fixture
def worker_id_suffix(worker_id) -> str:
    """A suffix unique to this xdist worker, for Redis keys, queue names and ports."""
    return "" if worker_id == "master" else f"-{worker_id}"


@pytest.fixture
def redis_client():
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


os.environ.setdefault("PLAYWRIGHT_BROWSERS_PATH", "0")


def pytest_collection_modifyitems(config, items):
    """Anything that drives Chromium is a browser test, wherever it lives:
    `make test` runs those in worker processes of their own (see Makefile)."""
    for item in items:
        path = str(item.path)
        uses_browser = {"browser", "playwright_instance"} & set(getattr(item, "fixturenames", ()))
        if "/tests/browser/" in path or uses_browser:
            item.add_marker(pytest.mark.browser)
        _serialize_rollback_if_transactional(item)


def _serialize_rollback_if_transactional(item) -> None:
    """Every transactional test restores the rows migrations made (role groups,
    the SEV table) with serialized_rollback. Mixing the two kinds breaks:
    a flush without it re-runs post_migrate (content types), and the next
    test's restore then inserts them twice (IntegrityError at setup)."""
    marker = item.get_closest_marker("django_db")
    fixtures = set(getattr(item, "fixturenames", ()))
    transactional = bool(marker and marker.kwargs.get("transaction")) or bool(
        {"transactional_db", "live_server"} & fixtures
    )
    if transactional and not (marker and marker.kwargs.get("serialized_rollback")):
        kwargs = dict(marker.kwargs) if marker else {}
        kwargs.update(transaction=True, serialized_rollback=True)
        item.add_marker(pytest.mark.django_db(**kwargs), append=False)
