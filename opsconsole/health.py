"""The console's own health endpoints, as the seeds describe them.

/livez  — the process answers (no dependency is touched).
/readyz — database, Redis and broker answer; 503 naming the one that fails.
/healthz — JSON: status, timestamp, version, each dependency's status
           and response time, and the watchdog's overdue work (watchdog.py).
"""

import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache

TIMEOUT_SECONDS = 2.0


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_redis() -> None:
    import redis

    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS
    )
    try:
        client.ping()
    finally:
        client.close()


def _check_broker() -> None:
    url = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        if not folder.is_dir():
            raise OSError(f"broker folder {folder} is missing")
        return
    if url == settings.REDIS_URL:
        return _check_redis()
    from kombu import Connection

    with Connection(url, connect_timeout=TIMEOUT_SECONDS) as conn:
        conn.ensure_connection(max_retries=1, timeout=TIMEOUT_SECONDS)


def dependency_checks() -> dict[str, Callable[[], None]]:
    checks: dict[str, Callable[[], None]] = {"database": _check_database}
    if settings.REDIS_URL:
        checks["redis"] = _check_redis
    checks["broker"] = _check_broker
    return checks


def run_checks() -> dict[str, dict[str, str]]:
    results = {}
    for name, check in dependency_checks().items():
        started = time.perf_counter()
        try:
            check()
        except Exception as exc:  # any failure of a dependency is "unhealthy", with its reason
            status, error = "unhealthy", f"{type(exc).__name__}: {exc}"[:300]
        else:
            status, error = "healthy", ""
        elapsed_ms = (time.perf_counter() - started) * 1000
        results[name] = {"status": status, "response_time": f"{elapsed_ms:.0f}ms"}
        if error:
            results[name]["error"] = error
    return results


@never_cache
def livez(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok\n", content_type="text/plain")


@never_cache
def readyz(request: HttpRequest) -> HttpResponse:
    results = run_checks()
    failing = [name for name, result in results.items() if result["status"] != "healthy"]
    if failing:
        return HttpResponse(f"not ready: {', '.join(failing)}\n", status=503, content_type="text/plain")
    return HttpResponse("ready\n", content_type="text/plain")


def _watchdog() -> dict:
    from . import watchdog

    try:
        return watchdog.report()
    except Exception as exc:  # the database is down: the checks above say so too
        return {"status": "unknown", "error": f"{type(exc).__name__}: {exc}"[:300]}


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Dependencies, and the watchdog: timed work (escalations, checklist
    slots, probes) overdue means beat or the workers are not doing their job,
    which /readyz cannot see; 503 either way."""
    results = run_checks()
    overdue = _watchdog()
    healthy = all(result["status"] == "healthy" for result in results.values()) and overdue["status"] == "ok"
    body = {
        "status": "healthy" if healthy else "unhealthy",
        "timestamp": timezone.now().replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "version": settings.VERSION,
        "checks": results,
        "watchdog": overdue,
    }
    return JsonResponse(body, status=200 if healthy else 503)
