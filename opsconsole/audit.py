"""The audit log: one helper that every state-changing action calls.

Each row holds a SHA-256 over its own content and the previous row's hash,
so an edited, inserted or deleted row breaks the chain and
`manage.py verify_audit` names the first one. The log is AUDIT_STREAMS such
chains ("streams"), not one: a writer appends to whichever stream is free,
so concurrent transactions (gunicorn workers, Celery workers, an alert
storm) do not queue behind a single lock held until their commit. Every
stream's head (last position and hash) is kept outside the table, in
AuditHead, moved in the same transaction as each append: rows deleted from
the end of a stream are reported too. The database refuses UPDATE and
DELETE on audit rows (opsconsole.append_only).
"""

import contextlib
import contextvars
import datetime
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.utils import timezone

from . import live
from .bulk import insert_many
from .context import current_request_id
from .models import AuditEntry, AuditHead

logger = logging.getLogger("opsconsole.audit")

GENESIS_HASH = "0" * 64


def _normalise(data: Any) -> Any:
    """Round-trip through JSON so that what is hashed equals what is stored and read back."""
    if data is None:
        return None
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


class _LenientEncoder(DjangoJSONEncoder):
    def default(self, o: Any) -> Any:
        try:
            return super().default(o)
        except TypeError:
            # Model instances, files, sets...: their text, never a 500 in the caller.
            return sorted(map(str, o)) if isinstance(o, (set, frozenset)) else str(o)


def to_json(data: Any) -> Any:
    """Like _normalise, for data of any type (admin snapshots): what JSON
    cannot hold is stored as its text."""
    if data is None:
        return None
    return json.loads(json.dumps(data, cls=_LenientEncoder))


def _payload(entry: AuditEntry) -> dict:
    return {
        # "seq" is the row's place in its stream's chain (the field was named
        # seq when there was one chain). Stream 1 is hashed as that one chain
        # was, so rows written before the streams existed still verify.
        "seq": entry.position,
        "created_at": entry.created_at.astimezone(datetime.UTC).isoformat(),
        "actor_id": entry.actor_id,
        "actor_label": entry.actor_label,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "target_repr": entry.target_repr,
        "before": entry.before,
        "after": entry.after,
        "request_id": entry.request_id,
        "prev_hash": entry.prev_hash,
    }


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def compute_hash(entry: AuditEntry) -> str:
    payload = _payload(entry)
    if entry.stream != 1:
        payload["stream"] = entry.stream
    return hashlib.sha256(_canonical(payload).encode()).hexdigest()


# The keys only the locked head decides, and where they fall in the sorted
# canonical text: every other key sorts before "prev_hash", between it and
# "seq" ("request_id"), or after "stream" (the target's three).
_HEAD_DECIDES = ("prev_hash", "seq", "stream")


def _hash_parts(entry: AuditEntry) -> tuple[str, str, str]:
    """compute_hash's canonical text cut around what only the locked head
    knows: text = head + PREV_HASH + mid + POSITION + (',"stream":N' unless
    stream 1) + tail. The database joins and hashes it in the same statement
    that locks the head (migration 0009)."""
    fields = {key: value for key, value in _payload(entry).items() if key not in _HEAD_DECIDES}
    pieces: list[list[str]] = [[], [], []]
    for key in sorted(fields):
        part = 0 if key < "prev_hash" else 1 if key < "seq" else 2
        if part == 2 and key < "stream":  # pragma: no cover - the field names are fixed
            raise RuntimeError(f"audit field {key!r} sorts between the head's keys")
        pieces[part].append(f"{_canonical(key)}:{_canonical(fields[key])}")
    head = "{" + "".join(item + "," for item in pieces[0]) + '"prev_hash":"'
    mid = '"' + "".join("," + item for item in pieces[1]) + ',"seq":'
    tail = "".join("," + item for item in pieces[2]) + "}"
    return head, mid, tail


def stream_count() -> int:
    return max(1, int(getattr(settings, "AUDIT_STREAMS", 8)))


TARGET_REPR_LENGTH = 300


def _entry(actor: Any, action: str, *, target_type: str, target_id: str, target_repr: str, before, after) -> AuditEntry:
    is_user = actor is not None and getattr(actor, "is_authenticated", False)
    return AuditEntry(
        created_at=timezone.now(),
        actor_id=actor.pk if is_user else None,
        actor_label=actor.get_username() if is_user else (str(actor) if actor else "system"),
        action=action,
        target_type=target_type,
        target_id=target_id,
        target_repr=target_repr,
        before=_normalise(before),
        after=_normalise(after),
        request_id=current_request_id() or "",
    )


def record(
    actor: Any,
    action: str,
    target: models.Model | None = None,
    *,
    before: dict | None = None,
    after: dict | None = None,
) -> AuditEntry:
    """Append one audit row. Call it inside the service's own transaction.

    `actor` is a user, or None for the system (Celery beat, alert webhooks).
    Inside `batch()` the row is written when the block ends (its `seq` is
    set then).
    """
    entry = _entry(
        actor,
        action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:TARGET_REPR_LENGTH] if target is not None else "",
        before=before,
        after=after,
    )
    # Audited writes may be conditional UPDATEs (no post_save): live pages
    # of the target's area refresh all the same (after commit).
    if target is not None:
        live.bump(target._meta.app_label)
    pending = _batch.get()
    if pending is not None and connection.in_atomic_block:
        # Dropped again if the savepoint it was recorded in rolls back: Django
        # forgets on_commit callbacks of a rolled-back savepoint, so the
        # marker's presence says whether the action still stands.
        marker = _Marker()
        transaction.on_commit(marker)
        pending.append((entry, marker))
        return entry
    _append([entry])
    return entry


class _Marker:
    def __call__(self) -> None:
        """Runs after commit; it only had to be there."""


_batch: contextvars.ContextVar[list | None] = contextvars.ContextVar("audit_batch", default=None)


@contextlib.contextmanager
def batch() -> Iterator[None]:
    """Write every audit row recorded in the block at its end, together: one
    head locked once, one INSERT, one head move, instead of three statements
    per row. Use it inside the caller's transaction, around a unit of work
    that records several rows (an Alertmanager delivery: incident declared,
    event added, delivery). The chain is the same as without it; the head is
    also held for less time (from the end of the block to commit)."""
    if _batch.get() is not None:
        yield  # nested: the outer block writes
        return
    token = _batch.set([])
    try:
        yield
        pending = _batch.get() or []
    finally:
        _batch.reset(token)
    standing = {id(func) for _sids, func, _robust in connection.run_on_commit}
    entries = [entry for entry, marker in pending if id(marker) in standing]
    if entries:
        _append(entries)


def _append(entries: list[AuditEntry]) -> None:
    """Chain `entries` onto one stream and write them: one statement for one
    entry on PostgreSQL, else three (lock a head, insert, move the head)."""
    if len(entries) == 1 and connection.vendor == "postgresql":
        _append_one(entries[0])
        _log(entries)
        return
    # No savepoint: the statements succeed together or the caller's
    # transaction fails with them (two round trips fewer per audited write).
    with transaction.atomic(savepoint=False):
        stream, position, prev_hash = _lock_a_head()
        for entry in entries:
            position += 1
            entry.stream, entry.position, entry.prev_hash = stream, position, prev_hash
            entry.hash = prev_hash = compute_hash(entry)
        if len(entries) == 1:
            entries[0].save(force_insert=True)
        else:
            insert_many(entries)
        last = entries[-1]
        AuditHead.objects.filter(pk=stream).update(position=last.position, hash=last.hash, updated_at=last.created_at)
    _log(entries)


def _row_values(entry: AuditEntry, *, with_target_repr: bool = True) -> list:
    """The entry's own columns in the order the append function takes them."""
    return [
        entry.created_at,
        entry.actor_id,
        entry.actor_label,
        entry.action,
        entry.target_type,
        entry.target_id,
        *([entry.target_repr] if with_target_repr else []),
        None if entry.before is None else json.dumps(entry.before),
        None if entry.after is None else json.dumps(entry.after),
        entry.request_id,
    ]


_APPEND_SQL = "SELECT * FROM opsconsole_audit_append(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"


def _append_one(entry: AuditEntry) -> None:
    """Lock a head, insert the row and move the head in one statement (the
    function of migration 0009: the tick path's busiest write was three round
    trips and two ORM compilations). One statement needs no transaction of
    its own; inside the caller's, the head stays locked until it commits."""
    count = stream_count()
    head, mid, tail = _hash_parts(entry)
    params = [count, _preferred_stream(count), *_row_values(entry), head, mid, tail]
    with connection.cursor() as cursor:
        cursor.execute(_APPEND_SQL, params)
        row = cursor.fetchone()
        if row is None:  # a head was missing: make them, then the same again
            ensure_heads(count)
            cursor.execute(_APPEND_SQL, params)
            row = cursor.fetchone()
    if row is None:  # pragma: no cover - heads created above; defensive
        raise RuntimeError("no audit stream head could be locked")
    entry.seq, entry.stream, entry.position, entry.prev_hash, entry.hash = row
    entry._state.adding, entry._state.db = False, connection.alias
    connection._audit_stream = entry.stream


# What stands for the target's text in the canonical text while the SQL
# statement that writes the row has not read it yet (StatementAppend).
_REPR_SLOT = "\x00target_repr\x00"


class StatementAppend:
    """An audit append made by the caller's own SQL statement, on PostgreSQL:
    for a conditional write whose target row (and its text) the same
    statement reads, so that the write and its audit row are one statement,
    atomic without a transaction of its own (the checklist tick: UPDATE,
    audit append, no BEGIN or COMMIT; three round trips fewer).

    `call_sql(text_sql)` is the append function's call, to be joined LATERAL
    on the written row: `text_sql` is the SQL expression of the target's
    text, cut to TARGET_REPR_LENGTH and written into the canonical text by
    PostgreSQL's to_json (which escapes exactly what Python's json.dumps
    does). Its parameters are `params`, in the call's place. The call
    returns no row when a stream's head is missing and the others are busy:
    the caller's statement must not write unless every head exists
    (`heads_exist_sql`, on a new or flushed database), and calls
    ensure_heads() and again. `done(row, target)` completes the entry as `record()` does (live
    pages, log line). Not for use inside `batch()`: the row is written by
    the statement itself."""

    def __init__(self, actor: Any, action: str, model: type[models.Model], target_id: Any, *, before=None, after=None):
        self.count = stream_count()
        entry = self.entry = _entry(
            actor,
            action,
            target_type=model._meta.label_lower,
            target_id=str(target_id),
            target_repr=_REPR_SLOT,
            before=before,
            after=after,
        )
        self.app_label = model._meta.app_label
        head, mid, tail = _hash_parts(entry)
        tail_before, slot, tail_after = tail.partition(_canonical(_REPR_SLOT))
        if not slot or _canonical(_REPR_SLOT) in tail_after:  # pragma: no cover - the field names are fixed
            raise RuntimeError("the target's text is not in the hash text's tail once")
        values = _row_values(entry, with_target_repr=False)  # the statement reads the text itself
        self.params = [self.count, _preferred_stream(self.count), *values, head, mid, tail_before, tail_after]

    # The number of heads, compared with the stream count (two parameters).
    heads_exist_sql = f"(SELECT count(*) FROM {AuditHead._meta.db_table} WHERE id <= %s) >= %s"  # nosec B608  # _meta

    @property
    def heads_exist_params(self) -> list:
        return [self.count, self.count]

    @staticmethod
    def call_sql(text_sql: str) -> str:
        text = f"left({text_sql}, {TARGET_REPR_LENGTH})"
        return (
            "opsconsole_audit_append(%s, %s, %s, %s, %s, %s, %s, %s, "
            f"{text}, %s, %s, %s, %s, %s, %s || to_json({text})::text || %s)"
        )

    def done(self, row: tuple, target: models.Model) -> AuditEntry:
        """`row`: the call's (seq, stream, position, prev_hash, hash)."""
        entry = self.entry
        entry.target_repr = str(target)[:TARGET_REPR_LENGTH]
        entry.seq, entry.stream, entry.position, entry.prev_hash, entry.hash = row
        entry._state.adding, entry._state.db = False, connection.alias
        connection._audit_stream = entry.stream
        live.bump(self.app_label)
        _log([entry])
        return entry


def _log(entries: list[AuditEntry]) -> None:
    # The log stream sees every audited action too, with the request's id.
    for entry in entries:
        logger.info(
            "%s by %s",
            entry.action,
            entry.actor_label,
            extra={
                "audit_seq": entry.seq,
                "action": entry.action,
                "target": f"{entry.target_type}:{entry.target_id}",
            },
        )


def _preferred_stream(count: int) -> int:
    """The stream this connection used last (a transaction that appends twice
    finds it already locked by itself, so it never waits on a second head and
    cannot deadlock on heads); at first, one spread by the server process."""
    preferred = getattr(connection, "_audit_stream", None)
    if preferred is None or preferred > count:
        raw = getattr(connection.connection, "info", None)
        seed = getattr(raw, "backend_pid", None) or (os.getpid() + threading.get_ident())
        preferred = seed % count + 1
    return preferred


def _lock_a_head() -> tuple[int, int, str]:
    """Lock a stream's head until commit and return (stream, position, hash).

    One statement: the preferred stream if it is free (or already ours), else
    the next free one after it (SKIP LOCKED); only when every stream is busy,
    wait for the preferred one.
    """
    count = stream_count()
    preferred = _preferred_stream(count)
    table = AuditHead._meta.db_table
    skip = " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    with connection.cursor() as cursor:
        for attempt in range(2):
            cursor.execute(
                f"SELECT id, position, hash FROM {table} WHERE id <= %s "  # nosec B608  # table from model _meta
                f"ORDER BY (id - %s + %s) %% %s LIMIT 1{skip}",
                [count, preferred, count, count],
            )
            row = cursor.fetchone()
            if row is not None:
                break
            if attempt == 0 and not ensure_heads(count):
                row = (
                    AuditHead.objects.select_for_update()
                    .filter(pk=preferred)
                    .values_list("id", "position", "hash")
                    .get()
                )
                break
    if row is None:  # pragma: no cover - heads created above; defensive
        raise RuntimeError("no audit stream head could be locked")
    connection._audit_stream = row[0]
    return row[0], row[1], row[2]


def ensure_heads(count: int | None = None) -> bool:
    """Make the heads of streams 1..count that do not exist; True if any did not.

    A head is missing on a new database (streams added by raising
    AUDIT_STREAMS), or after a TRUNCATE (a test flush, or someone with the
    table owner's rights: the trigger refuses DELETE). A stream that has rows
    starts again from its last row, loudly, rather than refuse every audited
    action in the console."""
    count = count or stream_count()
    existing = set(AuditHead.objects.filter(id__lte=count).values_list("id", flat=True))
    missing = [stream for stream in range(1, count + 1) if stream not in existing]
    heads = []
    for stream in missing:
        last = (
            AuditEntry.objects.filter(stream=stream)
            .order_by("-position")
            .values_list("position", "hash", "created_at")
            .first()
        )
        if last:
            logger.error(
                "Audit head record of stream %s was missing: re-created at row %s",
                stream,
                last[0],
                extra={"audit_stream": stream, "audit_position": last[0]},
            )
        position, hash_, at = last or (0, GENESIS_HASH, timezone.now())
        heads.append(AuditHead(id=stream, position=position, hash=hash_, updated_at=at))
    AuditHead.objects.bulk_create(heads, ignore_conflicts=True)
    return bool(missing)


def current_heads() -> list[AuditHead]:
    return list(AuditHead.objects.order_by("id"))


def format_head(head: AuditHead) -> str:
    """STREAM:POSITION:HASH, the form `verify_audit --expect-head` takes."""
    return f"{head.id}:{head.position}:{head.hash}"


def snapshot(instance: models.Model, fields: Iterable[str]) -> dict:
    """The audit 'before'/'after' view of a model: the named fields, JSON-ready."""
    return _normalise({name: getattr(instance, name) for name in fields})


def record_many(entries: Iterable[tuple[Any, str, models.Model | None, dict | None, dict | None]]) -> list[AuditEntry]:
    """Record several rows, (actor, action, target, before, after) each, written
    together (one `batch()`: one head lock, one INSERT) — for sweeps that act on
    hundreds of objects in one transaction."""
    with batch():
        return [
            record(actor, action, target, before=before, after=after)
            for actor, action, target, before, after in entries
        ]
