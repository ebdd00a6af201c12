"""Writes of the health-check area. Each public function owns its
transaction and, where a person or the system changes something that
matters, its audit entry."""

from __future__ import annotations

import datetime
import json
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Avg, Count, Max, Min, Q
from django.db.models.functions import TruncHour
from django.utils import timezone

from opsconsole import audit
from opsconsole.roles import check_capability

from .models import (
    RECENT_LATENCIES,
    Check,
    CheckResult,
    CheckRollup,
    CheckStateChange,
    MaintenanceWindow,
)
from .probes import ProbeResult, ProbeSpec, run_batch_sync

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


# --- configuration --------------------------------------------------------------


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
            after=audit.snapshot(
                window, ("service_id", "check_ref_id", "starts_at", "ends_at", "reason")
            ),
        )
    return window


def maintenance_window_end(*, actor, window: MaintenanceWindow) -> MaintenanceWindow:
    """End the window now. Idempotent: a window already over is left as is."""
    check_capability(actor, "config.edit")
    now = timezone.now()
    with transaction.atomic():
        # Conditional update: two people ending it at once write one end time.
        updated = MaintenanceWindow.objects.filter(
            pk=window.pk, ends_at__gt=now, starts_at__lt=now
        ).update(ends_at=now)
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


# --- scheduling -----------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    token: uuid.UUID
    queue: str
    check_ids: list[int]


def claim_due_checks(
    *, now: datetime.datetime | None = None, batch_size: int | None = None, limit: int | None = None
) -> list[Claim]:
    """Lease due checks in batches and return them grouped by queue.

    Two dispatchers never claim the same check: rows are locked with
    FOR UPDATE SKIP LOCKED and only rows without a live lease are taken. A
    lease lasts the check's timeout plus HEALTHCHECK_LEASE_MARGIN_SECONDS;
    if the worker dies, the check is due again once it expires.
    """
    now = now or timezone.now()
    batch_size = batch_size or settings.HEALTHCHECK_BATCH_SIZE
    limit = limit or settings.HEALTHCHECK_DISPATCH_LIMIT
    margin = datetime.timedelta(seconds=settings.HEALTHCHECK_LEASE_MARGIN_SECONDS)
    claims: list[Claim] = []
    claimed = 0
    while claimed < limit:
        with transaction.atomic():
            rows = list(
                Check.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(Q(next_due_at__isnull=True) | Q(next_due_at__lte=now), enabled=True)
                .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=now))
                .order_by("next_due_at", "id")
                .values_list("id", "queue", "timeout_seconds")[: min(batch_size, limit - claimed)]
            )
            if not rows:
                break
            by_queue: dict[str, list[tuple[int, float]]] = {}
            for check_id, queue, timeout in rows:
                by_queue.setdefault(queue or settings.HEALTHCHECK_DEFAULT_QUEUE, []).append(
                    (check_id, timeout)
                )
            for queue, items in by_queue.items():
                token = uuid.uuid4()
                ids = [check_id for check_id, _ in items]
                lease_until = (
                    now + margin + datetime.timedelta(seconds=max(timeout for _, timeout in items))
                )
                Check.objects.filter(id__in=ids).update(lease_until=lease_until, lease_token=token)
                claims.append(Claim(token, queue, ids))
        claimed += len(rows)
        if len(rows) < batch_size:
            break
    return claims


# --- results --------------------------------------------------------------------


def decide_state(
    *, current: str, pending: str, count: int, observed: str, needed: int, first: bool
) -> tuple[str, str, int, bool]:
    """Flap suppression. Returns (state, pending_state, pending_count, changed).

    The state changes only after `needed` consecutive results agree on a new
    state; a result equal to the current state resets the count. The very
    first result of a check sets its state at once (unknown means no data).
    """
    if observed == current:
        return current, "", 0, False
    if first:
        return observed, "", 0, True
    count = count + 1 if observed == pending else 1
    if count >= needed:
        return observed, "", 0, True
    return current, observed, count, False


_STATE_FIELDS = [
    "state",
    "state_changed_at",
    "last_checked_at",
    "last_message",
    "last_summary",
    "last_latency_ms",
    "last_details",
    "pending_state",
    "pending_count",
    "recent_latencies",
]
_SCHEDULE_FIELDS = ["next_due_at", "lease_until", "lease_token"]


def record_results(
    items: Sequence[tuple[int, ProbeResult]],
    *,
    lease_token: uuid.UUID | None = None,
    now: datetime.datetime | None = None,
    reschedule: bool = True,
) -> list[CheckStateChange]:
    """Write a batch of results in bulk and move each check's state on.

    Idempotent for a batch: with a lease token, only checks still holding
    that lease are written (a redelivered or stale batch writes nothing), and
    writing clears the lease. Returns the state changes made.
    """
    now = now or timezone.now()
    by_id = {check_id: result for check_id, result in items}
    if not by_id:
        return []
    with transaction.atomic():
        queryset = (
            Check.objects.select_for_update(of=("self",)).filter(id__in=list(by_id)).order_by("id")
        )
        if lease_token is not None:
            queryset = queryset.filter(lease_token=lease_token)
        checks = list(queryset.select_related("service").defer("config"))
        results, changes = [], []
        for check in checks:
            result = by_id[check.pk]
            results.append(
                CheckResult(
                    check_ref_id=check.pk,
                    checked_at=now,
                    state=result.state,
                    latency_ms=result.latency_ms,
                    message=result.message[:500],
                    summary=result.summary[:200],
                    details=result.details,
                )
            )
            previous = check.state
            check.state, check.pending_state, check.pending_count, changed = decide_state(
                current=check.state,
                pending=check.pending_state,
                count=check.pending_count,
                observed=result.state,
                needed=check.consecutive_needed,
                first=check.last_checked_at is None,
            )
            if changed:
                check.state_changed_at = now
                changes.append(
                    CheckStateChange(
                        check_ref=check,
                        changed_at=now,
                        from_state=previous,
                        to_state=check.state,
                        message=result.message[:500],
                        summary=result.summary[:200],
                    )
                )
            check.last_checked_at = now
            check.last_message = result.message[:500]
            check.last_summary = result.summary[:200]
            check.last_latency_ms = result.latency_ms
            check.last_details = result.details
            latency = round(result.latency_ms, 1) if result.latency_ms is not None else None
            check.recent_latencies = [
                *(check.recent_latencies or [])[-(RECENT_LATENCIES - 1) :],
                latency,
            ]
            if reschedule:
                check.next_due_at = now + datetime.timedelta(seconds=check.interval_seconds)
                check.lease_until = None
                check.lease_token = None
        CheckResult.objects.bulk_create(results, batch_size=1000)
        _bulk_update_checks(checks, _STATE_FIELDS + (_SCHEDULE_FIELDS if reschedule else []))
        if changes:
            _silence_in_maintenance(changes, now)
            CheckStateChange.objects.bulk_create(changes)
            _audit_changes(changes)
            actionable = [c.pk for c in changes if not c.silenced and c.check_ref.opens_incident]
            if actionable:
                from . import tasks

                transaction.on_commit(
                    lambda: [tasks.state_change_action.delay(pk) for pk in actionable]
                )
    return changes


_COLUMN_TYPES = {
    "id": "bigint",
    "state": "varchar",
    "state_changed_at": "timestamptz",
    "last_checked_at": "timestamptz",
    "last_message": "varchar",
    "last_summary": "varchar",
    "last_latency_ms": "double precision",
    "last_details": "jsonb",
    "pending_state": "varchar",
    "pending_count": "integer",
    "recent_latencies": "jsonb",
    "next_due_at": "timestamptz",
    "lease_until": "timestamptz",
    "lease_token": "uuid",
}


def _bulk_update_checks(checks: list[Check], fields: list[str]) -> None:
    """Write the fields of many checks in one statement per 1,000 rows.

    On PostgreSQL this is UPDATE … FROM (VALUES …): Django's bulk_update
    builds a CASE over every row for every field, which PostgreSQL evaluates
    per row (quadratic: seconds for a 500-check batch).
    """
    if connection.vendor != "postgresql":
        Check.objects.bulk_update(checks, fields, batch_size=500)
        return
    columns = ["id", *fields]
    row_sql = "(" + ", ".join(f"%s::{_COLUMN_TYPES[c]}" for c in columns) + ")"
    assignments = ", ".join(f"{f} = v.{f}" for f in fields)
    with connection.cursor() as cursor:
        for start in range(0, len(checks), 1000):
            chunk = checks[start : start + 1000]
            params: list = []
            for check in chunk:
                params.append(check.pk)
                for name in fields:
                    value = getattr(check, name)
                    params.append(json.dumps(value) if _COLUMN_TYPES[name] == "jsonb" else value)
            cursor.execute(
                f"UPDATE {Check._meta.db_table} AS c SET {assignments} "
                f"FROM (VALUES {', '.join([row_sql] * len(chunk))}) AS v({', '.join(columns)}) "
                "WHERE c.id = v.id",
                params,
            )


# Above this many changes in one batch (a mass outage, or the first results
# of many new checks) one audit row lists them all: an audit row per change
# would serialise thousands of appends on the audit chain's lock.
AUDIT_EACH_MAX = 20


def _audit_changes(changes: list[CheckStateChange]) -> None:
    if len(changes) <= AUDIT_EACH_MAX:
        for change in changes:
            audit.record(
                None,
                "healthchecks.state_change",
                change.check_ref,
                before={"state": change.from_state},
                # The summary: the detailed message may quote fetched data,
                # and audit rows are kept forever.
                after={
                    "state": change.to_state,
                    "summary": change.summary,
                    "silenced": change.silenced,
                },
            )
        return
    audit.record(
        None,
        "healthchecks.state_changes",
        None,
        after={
            "changes": [
                {
                    "check": c.check_ref.pk,
                    "from": c.from_state,
                    "to": c.to_state,
                    "silenced": c.silenced,
                }
                for c in changes
            ]
        },
    )


def _silence_in_maintenance(changes: list[CheckStateChange], now: datetime.datetime) -> None:
    check_ids = {c.check_ref.pk for c in changes}
    service_ids = {c.check_ref.service_id for c in changes}
    windows = (
        MaintenanceWindow.objects.filter(starts_at__lte=now, ends_at__gt=now)
        .filter(Q(check_ref_id__in=check_ids) | Q(service_id__in=service_ids))
        .values_list("check_ref_id", "service_id")
    )
    silenced_checks = {check_id for check_id, _ in windows if check_id}
    silenced_services = {service_id for check_id, service_id in windows if service_id}
    for change in changes:
        change.silenced = (
            change.check_ref.pk in silenced_checks
            or change.check_ref.service_id in silenced_services
        )


def run_checks(
    check_ids: Iterable[int],
    *,
    lease_token: uuid.UUID | None = None,
    concurrency: int | None = None,
) -> list[CheckStateChange]:
    """Probe the checks concurrently and record the results (the worker's batch)."""
    queryset = Check.objects.filter(id__in=list(check_ids))
    if lease_token is not None:
        queryset = queryset.filter(lease_token=lease_token)
    specs = [ProbeSpec.from_check(check) for check in queryset]
    if not specs:
        return []
    results = run_batch_sync(specs, concurrency=concurrency or settings.HEALTHCHECK_CONCURRENCY)
    return record_results(
        [(spec.check_id, result) for spec, result in zip(specs, results, strict=True)],
        lease_token=lease_token,
    )


def run_check_now(*, actor, check: Check) -> ProbeResult:
    """Probe one check at once (the page's "Run now") and record the result;
    its schedule is left as it was."""
    check_capability(actor, "config.edit")
    result = run_batch_sync([ProbeSpec.from_check(check)])[0]
    with transaction.atomic():
        record_results([(check.pk, result)], reschedule=False)
        audit.record(
            actor,
            "healthchecks.run_now",
            check,
            after={"state": result.state, "summary": result.summary},
        )
    return result


# --- retention ------------------------------------------------------------------


def rollup_results(*, now: datetime.datetime | None = None, hours: int = 3) -> int:
    """Aggregate the last `hours` complete hours of raw results into hourly
    rollups. Idempotent: re-running an hour rewrites the same row."""
    now = now or timezone.now()
    end = now.replace(minute=0, second=0, microsecond=0)
    start = end - datetime.timedelta(hours=hours)
    rows = (
        CheckResult.objects.filter(checked_at__gte=start, checked_at__lt=end)
        .annotate(hour=TruncHour("checked_at"))
        .values("check_ref_id", "hour")
        .annotate(
            count=Count("id"),
            ok_count=Count("id", filter=Q(state=Check.State.OK)),
            lmin=Min("latency_ms"),
            lavg=Avg("latency_ms"),
            lmax=Max("latency_ms"),
        )
        .order_by()
    )
    rollups = [
        CheckRollup(
            check_ref_id=row["check_ref_id"],
            hour=row["hour"],
            count=row["count"],
            ok_count=row["ok_count"],
            latency_min_ms=row["lmin"],
            latency_avg_ms=row["lavg"],
            latency_max_ms=row["lmax"],
        )
        for row in rows
    ]
    CheckRollup.objects.bulk_create(
        rollups,
        batch_size=1000,
        update_conflicts=True,
        unique_fields=["check_ref", "hour"],
        update_fields=["count", "ok_count", "latency_min_ms", "latency_avg_ms", "latency_max_ms"],
    )
    return len(rollups)


def prune_results(*, now: datetime.datetime | None = None) -> tuple[int, int]:
    """Delete raw results older than HEALTHCHECK_RAW_RETENTION_DAYS (after
    rolling them up) and rollups older than HEALTHCHECK_ROLLUP_RETENTION_DAYS."""
    now = now or timezone.now()
    rollup_results(now=now)
    raw_cutoff = now - datetime.timedelta(days=settings.HEALTHCHECK_RAW_RETENTION_DAYS)
    rollup_cutoff = now - datetime.timedelta(days=settings.HEALTHCHECK_ROLLUP_RETENTION_DAYS)
    raw, _ = CheckResult.objects.filter(checked_at__lt=raw_cutoff).delete()
    old, _ = CheckRollup.objects.filter(hour__lt=rollup_cutoff).delete()
    return raw, old
