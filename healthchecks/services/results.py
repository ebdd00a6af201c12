"""Recording probe results: state decisions, state changes, their audit and maintenance silencing."""

from __future__ import annotations

import datetime
import json
import logging
import uuid
from collections.abc import Iterable, Sequence

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from opsconsole import audit, live
from opsconsole.roles import check_capability

from .. import hooks
from ..models import (
    RECENT_LATENCIES,
    Check,
    CheckResult,
    CheckStateChange,
    MaintenanceWindow,
)
from ..probes import ProbeResult, ProbeSpec, run_batch_sync

log = logging.getLogger(__name__)


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
        queryset = Check.objects.select_for_update(of=("self",)).filter(id__in=list(by_id)).order_by("id")
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
            hooks.state_changed([c for c in changes if not c.silenced])
            actionable = [c.pk for c in changes if not c.silenced and c.check_ref.opens_incident]
            if actionable:
                from .. import tasks

                transaction.on_commit(lambda: [tasks.state_change_action.delay(pk) for pk in actionable])
        # Bulk writes send no post_save: the checks' pages (and, on a state
        # change, the board) refresh through their live stamps.
        live.bump(*(f"check:{check.pk}" for check in checks), "healthchecks" if changes else "")
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
                "WHERE c.id = v.id",  # nosec B608  # names from model _meta and a fixed list; values are %s parameters
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
        change.silenced = change.check_ref.pk in silenced_checks or change.check_ref.service_id in silenced_services


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
