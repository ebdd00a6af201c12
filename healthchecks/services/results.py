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
from opsconsole.bulk import bound_cursor
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


# What deciding a check's next state reads: plain tuples, not model
# instances (at 1,667 results/s building objects is a good part of the cost).
# Whether the check ever ran is all that is needed of last_checked_at.
_DECIDE_FIELDS = (
    "id",
    "state",
    "pending_state",
    "pending_count",
    "consecutive_needed",
    "last_checked_at IS NULL",
    "recent_latencies",
)


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

    Three statements whatever the batch size (lock and read the checks, COPY
    the results, one UPDATE of the checks), plus the state changes' own when
    a state moved. The batch travels as columns (one list per field, each
    JSON value encoded once for the result row and the check's copy of it):
    no object or dict per result.
    """
    now = now or timezone.now()
    by_id = {check_id: result for check_id, result in items}
    if not by_id:
        return []
    with transaction.atomic():
        rows = _lock_checks(list(by_id), lease_token)
        ids, states, changed_at, messages, summaries, latencies = [], [], [], [], [], []
        details, pendings, counts, recents = [], [], [], []
        copy_rows, changed = [], {}
        dumps = json.dumps
        for check_id, state, pending, count, needed, first, recent in rows:
            result = by_id[check_id]
            message, summary, observed, latency_ms = (
                result.message[:500],
                result.summary[:200],
                result.state,
                result.latency_ms,
            )
            details_json = dumps(result.details)
            copy_rows.append((check_id, now, observed, latency_ms, message, summary, details_json))
            new_state, pending, count, moved = decide_state(
                current=state, pending=pending, count=count, observed=observed, needed=needed, first=first
            )
            if moved:
                changed[check_id] = (state, new_state, message, summary)
            latency = round(latency_ms, 1) if latency_ms is not None else None
            recent = json.loads(recent) if isinstance(recent, str) else recent
            ids.append(check_id)
            states.append(new_state)
            changed_at.append(now if moved else None)
            messages.append(message)
            summaries.append(summary)
            latencies.append(latency_ms)
            details.append(details_json)
            pendings.append(pending)
            counts.append(count)
            recents.append(dumps([*(recent or [])[-(RECENT_LATENCIES - 1) :], latency]))
        _insert_results(copy_rows)
        columns = {
            "state": states,
            "state_changed_at": changed_at,
            "last_message": messages,
            "last_summary": summaries,
            "last_latency_ms": latencies,
            "last_details": details,
            "pending_state": pendings,
            "pending_count": counts,
            "recent_latencies": recents,
        }
        same = {"last_checked_at": now}
        if reschedule:
            same.update(lease_until=None, lease_token=None, scheduled_at=None)
        _update_checks(ids, columns, same, reschedule_at=now if reschedule else None)
        changes = _state_changes(changed, now)
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
        live.bump(*(f"check:{check_id}" for check_id in ids), "healthchecks" if changes else "")
    return changes


def _lock_checks(ids: list[int], lease_token: uuid.UUID | None) -> list[tuple]:
    """Lock the checks (those still holding the lease, given a token), in id
    order, and read what deciding their state needs, as tuples.

    On PostgreSQL the ids travel as one binary array (`id = ANY(%b)`): with
    `id__in` the driver quotes 500 placeholders into the SQL and the server
    parses them, per batch and twice (this and the batch's specs)."""
    if connection.vendor != "postgresql":
        queryset = Check.objects.select_for_update(of=("self",)).filter(id__in=ids).order_by("id")
        if lease_token is not None:
            queryset = queryset.filter(lease_token=lease_token)
        fields = [name.removesuffix(" IS NULL") for name in _DECIDE_FIELDS]
        return [
            (*row[:5], row[5] is None, *row[6:])  # last_checked_at → whether the check never ran
            for row in queryset.values_list(*fields)
        ]
    return _select_by_ids(_DECIDE_FIELDS, ids, lease_token, lock=True)


def _select_by_ids(fields: Sequence[str], ids: list[int], lease_token: uuid.UUID | None, *, lock: bool) -> list:
    """SELECT fields FROM checks WHERE id = ANY(ids) [AND lease_token = …],
    ordered by id (the lock order), as tuples (jsonb as its text)."""
    sql = f"SELECT {', '.join(fields)} FROM {Check._meta.db_table} WHERE id = ANY(%b::bigint[])"  # nosec B608  # fixed names
    params: list = [ids]
    if lease_token is not None:
        sql += " AND lease_token = %b"
        params.append(lease_token)
    sql += " ORDER BY id FOR UPDATE" if lock else " ORDER BY id"
    with bound_cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _state_changes(changed: dict[int, tuple[str, str, str, str]], now: datetime.datetime) -> list[CheckStateChange]:
    """The CheckStateChange rows (not saved) of the checks whose state moved,
    with their check and service loaded (one query, only when something moved)."""
    if not changed:
        return []
    checks = Check.objects.select_related("service").defer("config").in_bulk(list(changed))
    return [
        CheckStateChange(
            check_ref=checks[check_id],
            changed_at=now,
            from_state=before,
            to_state=after,
            message=message,
            summary=summary,
        )
        for check_id, (before, after, message, summary) in changed.items()
    ]


_RESULT_COLUMNS = ("check_id", "checked_at", "state", "latency_ms", "message", "summary", "details")


def _insert_results(rows: list[tuple]) -> None:
    """Append the result rows (details already JSON text): COPY on
    PostgreSQL (no SQL text to build or parse per row), bulk_create elsewhere."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        CheckResult.objects.bulk_create(
            [
                CheckResult(
                    **dict(zip(("check_ref_id", *_RESULT_COLUMNS[1:]), (*row[:-1], json.loads(row[-1])), strict=True))
                )
                for row in rows
            ],
            batch_size=500,
        )
        return
    table = CheckResult._meta.db_table
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {table} ({', '.join(_RESULT_COLUMNS)}) FROM STDIN") as copy:
            write_row = copy.write_row
            for row in rows:
                write_row(row)


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
    "scheduled_at": "timestamptz",
}


# Fields whose NULL in an update means "keep the stored value": a check's
# state_changed_at moves only when its state does.
_KEEP_WHEN_NULL = {"state_changed_at"}


def next_due(scheduled_at: datetime.datetime | None, interval: int, now: datetime.datetime) -> datetime.datetime:
    """When a check that just ran is next due: one interval after the time
    this run was due, so that a check runs every `interval` seconds however
    late each run started (with now + interval, every run's dispatch wait
    and probe time were added to the period: 50,000 checks at 30 s gave
    ~1,450 results/s instead of 1,667). A run more than half an interval
    late skips to half an interval from now rather than running again at
    once (no catch-up burst after an outage). Without a claimed due time
    (a first run, "Run now"): one interval from now."""
    step = datetime.timedelta(seconds=interval)
    return max((scheduled_at or now) + step, now + step / 2)


def _update_checks(
    ids: list[int],
    columns: dict[str, list],
    same: dict[str, object],
    *,
    reschedule_at: datetime.datetime | None = None,
) -> None:
    """Write the fields of many checks in one statement: `columns` maps a
    field to its values, in the order of `ids` (jsonb values as JSON text);
    `same` a field to the one value every check gets (one parameter, not
    an array of copies). With `reschedule_at` (the results' time), each
    check's next_due_at moves on (next_due below), before `same` clears
    scheduled_at.

    On PostgreSQL: UPDATE … FROM unnest(one array per column), so the
    statement has one parameter per column whatever the number of rows
    (Django's bulk_update builds a CASE over every row for every field,
    quadratic; a VALUES list makes the driver parse thousands of
    placeholders).
    """
    if not ids:
        return
    if connection.vendor != "postgresql":
        if reschedule_at is not None:
            schedule = dict(
                (check_id, (scheduled_at, interval))
                for check_id, scheduled_at, interval in Check.objects.filter(id__in=ids).values_list(
                    "id", "scheduled_at", "interval_seconds"
                )
            )
            columns = {**columns, "next_due_at": [next_due(*schedule[i], reschedule_at) for i in ids]}
        decoded = {
            name: [json.loads(v) for v in values] if _COLUMN_TYPES[name] == "jsonb" else values
            for name, values in columns.items()
        }
        decoded.update({name: [value] * len(ids) for name, value in same.items()})
        plain = [f for f in decoded if f not in _KEEP_WHEN_NULL]
        checks = [Check(pk=check_id, **{f: decoded[f][i] for f in plain}) for i, check_id in enumerate(ids)]
        Check.objects.bulk_update(checks, plain, batch_size=500)
        for name in _KEEP_WHEN_NULL & set(decoded):
            for check_id, value in zip(ids, decoded[name], strict=True):
                if value is not None:
                    Check.objects.filter(pk=check_id).update(**{name: value})
        return
    params: list[list] = [ids]
    # %b: binary arrays, no per-element quoting or parsing.
    arrays, assignments = ["%b::bigint[]"], []
    for name, values in columns.items():
        kind = _COLUMN_TYPES[name]
        params.append(values)
        # jsonb travels as text (psycopg would otherwise need a wrapper per value).
        arrays.append("%b::text[]::jsonb[]" if kind == "jsonb" else f"%b::{kind}[]")
        keep = name in _KEEP_WHEN_NULL
        assignments.append(f"{name} = COALESCE(v.{name}, c.{name})" if keep else f"{name} = v.{name}")
    # The SET clause comes first in the statement: so do its parameters.
    first: list = []
    if reschedule_at is not None:  # next_due() in SQL, from the row's own schedule
        assignments.append(
            "next_due_at = GREATEST("
            "COALESCE(c.scheduled_at, %b::timestamptz) + make_interval(secs => c.interval_seconds), "
            "%b::timestamptz + make_interval(secs => c.interval_seconds / 2.0))"
        )
        first += [reschedule_at, reschedule_at]
    for name in same:
        assignments.append(f"{name} = %b::{_COLUMN_TYPES[name]}")
    params = [*first, *same.values(), *params]
    with bound_cursor() as cursor:
        cursor.execute(
            f"UPDATE {Check._meta.db_table} AS c SET {', '.join(assignments)} "
            f"FROM unnest({', '.join(arrays)}) AS v(id, {', '.join(columns)}) "
            "WHERE c.id = v.id",  # nosec B608  # names from model _meta and a fixed list; values are parameters
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


# What ProbeSpec.from_check reads: the rest of the row (last message,
# details, recent latencies) is not loaded for a batch.
_SPEC_FIELDS = (
    "id",
    "kind",
    "config",
    "timeout_seconds",
    "warning_threshold",
    "critical_threshold",
    "interval_seconds",
    "last_ping_at",
    "last_ping_failed",
    "created_at",
)


def run_checks(
    check_ids: Iterable[int],
    *,
    lease_token: uuid.UUID | None = None,
    concurrency: int | None = None,
) -> list[CheckStateChange]:
    """Probe the checks concurrently and record the results (the worker's batch)."""
    ids = list(check_ids)
    if connection.vendor == "postgresql":
        rows = _select_by_ids(_SPEC_FIELDS, ids, lease_token, lock=False)
    else:
        queryset = Check.objects.filter(id__in=ids)
        if lease_token is not None:
            queryset = queryset.filter(lease_token=lease_token)
        rows = queryset.values_list(*_SPEC_FIELDS)
    # Tuples, not model instances: a batch builds thousands of specs.
    loads = json.loads
    specs = [
        ProbeSpec(
            check_id=check_id,
            kind=kind,
            # jsonb comes as text from the raw query, decoded from the ORM's.
            config=(loads(config) if isinstance(config, str) else config) or {},
            timeout=float(timeout),
            warning=warning,
            critical=critical,
            interval_seconds=interval,
            last_ping_at=last_ping_at,
            last_ping_failed=last_ping_failed,
            created_at=created_at,
        )
        for (
            check_id,
            kind,
            config,
            timeout,
            warning,
            critical,
            interval,
            last_ping_at,
            last_ping_failed,
            created_at,
        ) in rows
    ]
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
