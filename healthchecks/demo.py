"""Demo checks against the console itself. Idempotent: a check that exists
(same service and name) is left as it is."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone

from opsconsole.models import Service

from .models import Check


def _demo_checks() -> list[tuple[str, str, dict]]:
    """(service slug, check name, fields)"""
    checks = [
        (
            "ops-console",
            "healthz",
            {
                "kind": Check.Kind.HTTP,
                "interval_seconds": 30,
                "timeout_seconds": 5,
                "warning_threshold": 500,
                "critical_threshold": 2000,
                "config": {
                    "url": f"{settings.CONSOLE_BASE_URL}/healthz",
                    "json_path": "status",
                    "json_equals": "healthy",
                },
            },
        ),
        (
            "ops-console",
            "TLS certificate (example.com)",
            {
                "kind": Check.Kind.TLS,
                "interval_seconds": 3600,
                "timeout_seconds": 10,
                "warning_threshold": 30,
                "critical_threshold": 7,
                "config": {"host": "example.com", "port": 443},
            },
        ),
        (
            "postgresql",
            "Nightly backup",
            {
                "kind": Check.Kind.HEARTBEAT,
                "interval_seconds": 300,
                "timeout_seconds": 5,
                "consecutive_needed": 1,
                "config": {"period_seconds": 86400, "grace_seconds": 3600},
            },
        ),
    ]
    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.postgresql":
        host, port = database.get("HOST") or "127.0.0.1", database.get("PORT") or 5432
        dsn = f"postgresql://{database.get('USER') or 'postgres'}@{host}:{port}/{database['NAME']}"
        checks.append(
            (
                "postgresql",
                "Connection usage %",
                {
                    "kind": Check.Kind.POSTGRES,
                    "interval_seconds": 60,
                    "timeout_seconds": 5,
                    "warning_threshold": 80,
                    "critical_threshold": 95,
                    "config": {
                        "dsn": dsn,
                        "query": "SELECT 100.0 * count(*) "
                        "/ current_setting('max_connections')::int FROM pg_stat_activity",
                    },
                },
            )
        )
    if settings.REDIS_URL:
        checks.append(
            (
                "redis",
                "Ping",
                {
                    "kind": Check.Kind.REDIS,
                    "interval_seconds": 30,
                    "timeout_seconds": 3,
                    "config": {"url": settings.REDIS_URL, "mode": "ping"},
                },
            )
        )
        checks.append(
            (
                "redis",
                "Celery queue depth",
                {
                    "kind": Check.Kind.REDIS,
                    "interval_seconds": 60,
                    "timeout_seconds": 3,
                    "warning_threshold": 1000,
                    "critical_threshold": 5000,
                    "config": {"url": settings.REDIS_URL, "mode": "list", "key": "default"},
                },
            )
        )
        parts = urlsplit(settings.REDIS_URL)
        checks.append(
            (
                "redis",
                "TCP connect",
                {
                    "kind": Check.Kind.TCP,
                    "interval_seconds": 60,
                    "timeout_seconds": 3,
                    "config": {"host": parts.hostname or "127.0.0.1", "port": parts.port or 6379},
                },
            )
        )
    return checks


def seed(stdout) -> None:
    created = 0
    services = {
        service.slug: service
        for service in Service.objects.filter(slug__in={slug for slug, _name, _fields in _demo_checks()})
    }
    for slug, name, fields in _demo_checks():
        service = services.get(slug)
        if service is None:
            continue
        _check, was_created = Check.objects.get_or_create(
            service=service, name=name, defaults={**fields, "next_due_at": timezone.now()}
        )
        created += was_created
    stdout.write(f"Health checks: {created} demo checks created.")
