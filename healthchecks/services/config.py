"""Configuring checks and maintenance windows (audited, secrets masked)."""

from __future__ import annotations

import datetime
import logging

from django.db import transaction
from django.utils import timezone

from opsconsole import audit
from opsconsole.roles import check_capability

from ..models import (
    Check,
    MaintenanceWindow,
)

log = logging.getLogger(__name__)

CHECK_AUDIT_FIELDS = (
    "name",
    "service_id",
    "kind",
    "config",
    "interval_seconds",
    "timeout_seconds",
    "enabled",
    "warning_threshold",
    "critical_threshold",
    "consecutive_needed",
    "queue",
    "opens_incident",
)

# Secrets inside a check's config never reach the audit log.
_SECRET_KEYS = ("dsn", "password", "headers", "kubeconfig_content", "ca_pem")


def _mask(key: str, value: object) -> object:
    if key in _SECRET_KEYS:
        return "***"
    if key == "url" and isinstance(value, str):
        # redis://:password@host/0 or https://user:password@host/: keep the host only.
        scheme, sep, rest = value.partition("://")
        netloc, slash, path = rest.partition("/")
        if sep and "@" in netloc:
            return f"{scheme}://***@{netloc.rsplit('@', 1)[1]}{slash}{path}"
    return value


def mask_config(config: dict | None) -> dict:
    """A check's config as the audit log may show it: secrets replaced."""
    return {k: _mask(k, v) for k, v in (config or {}).items()}


def _audit_snapshot(check: Check) -> dict:
    data = audit.snapshot(check, CHECK_AUDIT_FIELDS)
    data["config"] = mask_config(data.get("config"))
    return data


def check_create(*, actor, **fields) -> Check:
    """Create a check, due at once."""
    check_capability(actor, "config.edit")
    with transaction.atomic():
        check = Check.objects.create(next_due_at=timezone.now(), **fields)
        audit.record(actor, "healthchecks.check_create", check, after=_audit_snapshot(check))
    return check


def check_update(*, actor, check: Check, **fields) -> Check:
    """Save the edited fields. The latest state is kept; a changed kind or
    target makes the check due at once so that the board shows fresh data."""
    check_capability(actor, "config.edit")
    with transaction.atomic():
        # Lock the row: the result writer updates the same row's state fields,
        # and we only ever write the configuration fields below.
        current = Check.objects.select_for_update().get(pk=check.pk)
        before = _audit_snapshot(current)
        for name, value in fields.items():
            setattr(current, name, value)
        if current.kind != before["kind"] or current.config != check.config:
            current.next_due_at = timezone.now()
        current.save(update_fields=[*fields, "next_due_at"])
        audit.record(
            actor,
            "healthchecks.check_update",
            current,
            before=before,
            after=_audit_snapshot(current),
        )
    return current


def maintenance_window_create(
    *,
    actor,
    service=None,
    check: Check | None = None,
    starts_at: datetime.datetime,
    ends_at: datetime.datetime,
    reason: str,
) -> MaintenanceWindow:
    check_capability(actor, "config.edit")
    with transaction.atomic():
        window = MaintenanceWindow.objects.create(
            service=service,
            check_ref=check,
            starts_at=starts_at,
            ends_at=ends_at,
            reason=reason,
            created_by=actor,
        )
        audit.record(
            actor,
            "healthchecks.maintenance_create",
            window,
            after=audit.snapshot(window, ("service_id", "check_ref_id", "starts_at", "ends_at", "reason")),
        )
    return window


def maintenance_window_end(*, actor, window: MaintenanceWindow) -> MaintenanceWindow:
    """End the window now. Idempotent: a window already over is left as is."""
    check_capability(actor, "config.edit")
    now = timezone.now()
    with transaction.atomic():
        # Conditional update: two people ending it at once write one end time.
        updated = MaintenanceWindow.objects.filter(pk=window.pk, ends_at__gt=now, starts_at__lt=now).update(ends_at=now)
        if updated:
            audit.record(
                actor,
                "healthchecks.maintenance_end",
                window,
                before={"ends_at": window.ends_at},
                after={"ends_at": now},
            )
    window.refresh_from_db()
    return window
