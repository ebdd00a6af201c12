"""The audit log: one helper that every state-changing action calls.

Each row holds a SHA-256 over its own content and the previous row's hash,
so an edited, inserted or deleted row breaks the chain and
`manage.py verify_audit` names the first one. The chain's head (last seq and
hash) is kept outside the table, in AuditHead, moved in the same transaction
as each append: rows deleted from the end of the log are reported too. The
database refuses UPDATE and DELETE on audit rows (opsconsole.append_only).
"""

import datetime
import hashlib
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.utils import timezone

from . import live
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


def compute_hash(entry: AuditEntry) -> str:
    payload = {
        "seq": entry.seq,
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
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


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
    """
    with transaction.atomic():
        # The head row's lock serialises appends (the chain must be linear)
        # until commit; reading it replaces a scan for the last row, so an
        # append stays three statements: lock+read, insert, move the head.
        head = AuditHead.objects.select_for_update().filter(pk=1).values_list("seq", "hash").first()
        if head is None:
            head = _recreate_head()
        seq, prev_hash = head[0] + 1, head[1]
        is_user = actor is not None and getattr(actor, "is_authenticated", False)
        entry = AuditEntry(
            seq=seq,
            created_at=timezone.now(),
            actor_id=actor.pk if is_user else None,
            actor_label=actor.get_username() if is_user else (str(actor) if actor else "system"),
            action=action,
            target_type=target._meta.label_lower if target is not None else "",
            target_id=str(target.pk) if target is not None else "",
            target_repr=str(target)[:300] if target is not None else "",
            before=_normalise(before),
            after=_normalise(after),
            request_id=current_request_id() or "",
            prev_hash=prev_hash,
        )
        entry.hash = compute_hash(entry)
        entry.save(force_insert=True)
        AuditHead.objects.filter(pk=1).update(seq=seq, hash=entry.hash, updated_at=entry.created_at)
        # Audited writes may be conditional UPDATEs (no post_save): live pages
        # of the target's area refresh all the same.
        if target is not None:
            live.bump(target._meta.app_label)
    # The log stream sees every audited action too, with the request's id.
    logger.info(
        "%s by %s",
        action,
        entry.actor_label,
        extra={"audit_seq": seq, "action": action, "target": f"{entry.target_type}:{entry.target_id}"},
    )
    return entry


def _recreate_head() -> tuple[int, str]:
    """The head row is missing: only a TRUNCATE (a test flush, or someone
    with the table owner's rights) removes it, the trigger refuses DELETE.
    Start it again from the table's last row, loudly, rather than refuse
    every audited action in the console."""
    last = AuditEntry.objects.order_by("-seq").values_list("seq", "hash", "created_at").first()
    seq, hash_, at = last if last else (0, GENESIS_HASH, timezone.now())
    if last:
        logger.error("Audit head record was missing: re-created at row %s", seq, extra={"audit_seq": seq})
    AuditHead.objects.get_or_create(pk=1, defaults={"seq": seq, "hash": hash_, "updated_at": at})
    return AuditHead.objects.select_for_update().filter(pk=1).values_list("seq", "hash").get()


def current_head() -> AuditHead | None:
    return AuditHead.objects.filter(pk=1).first()


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    message: str


class _ChainWalk:
    """Walks rows in seq order, remembering where the chain has got to."""

    def __init__(self) -> None:
        self.expected_seq, self.prev_hash = 1, GENESIS_HASH

    def check(self, entries: Iterable[AuditEntry]) -> Iterator[ChainProblem]:
        for entry in entries:
            if entry.seq != self.expected_seq:
                yield ChainProblem(
                    entry.seq,
                    f"rows {self.expected_seq}..{entry.seq - 1} are missing (deleted)"
                    if entry.seq > self.expected_seq
                    else f"row {entry.seq} is out of sequence (inserted)",
                )
            if entry.prev_hash != self.prev_hash:
                yield ChainProblem(
                    entry.seq, f"row {entry.seq} does not follow the row before it (inserted or deleted)"
                )
            if compute_hash(entry) != entry.hash:
                yield ChainProblem(entry.seq, f"row {entry.seq} was edited: its content no longer matches its hash")
            self.expected_seq, self.prev_hash = entry.seq + 1, entry.hash

    @property
    def last_seq(self) -> int:
        return self.expected_seq - 1


def _head_problem(walk: _ChainWalk, head_seq: int, head_hash: str) -> ChainProblem | None:
    if head_seq < walk.last_seq:
        return ChainProblem(
            head_seq + 1, f"rows {head_seq + 1}..{walk.last_seq} are beyond the chain's head (inserted)"
        )
    if head_seq > walk.last_seq:
        return ChainProblem(
            walk.last_seq + 1,
            f"rows {walk.last_seq + 1}..{head_seq} are missing from the end of the log (deleted)",
        )
    if head_hash != walk.prev_hash:
        return ChainProblem(head_seq, f"row {head_seq} is not the row the chain's head records (rewritten)")
    return None


def verify_chain(
    entries: Iterable[AuditEntry] | None = None, head: tuple[int, str] | None = None
) -> Iterator[ChainProblem]:
    """Yield every break in the chain, in order. No problems means an intact log.

    Without arguments: the whole table, then its end against the head record
    (rows appended while the walk ran are walked too). With `entries`, only
    those, checked against `head` (seq, hash) if given.
    """
    walk = _ChainWalk()
    if entries is not None:
        yield from walk.check(entries)
        if head is not None and (problem := _head_problem(walk, *head)):
            yield problem
        return
    yield from walk.check(AuditEntry.objects.order_by("seq").iterator(chunk_size=2000))
    while True:
        # Read after the walk: an append commits its row and the head together,
        # so a head past the last row walked is either newer rows or deleted ones.
        record_ = current_head()
        if record_ is None:
            if walk.last_seq:
                yield ChainProblem(walk.last_seq, "the chain's head record is missing (deleted)")
            return
        if record_.seq > walk.last_seq:
            newer = list(AuditEntry.objects.filter(seq__gt=walk.last_seq, seq__lte=record_.seq).order_by("seq"))
            if newer:
                yield from walk.check(newer)
                continue
        if problem := _head_problem(walk, record_.seq, record_.hash):
            yield problem
        return


def snapshot(instance: models.Model, fields: Iterable[str]) -> dict:
    """The audit 'before'/'after' view of a model: the named fields, JSON-ready."""
    return _normalise({name: getattr(instance, name) for name in fields})
