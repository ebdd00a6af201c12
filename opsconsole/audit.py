"""The audit log: one helper that every state-changing action calls.

Each row holds a SHA-256 over its own content and the previous row's hash,
so an edited, inserted or deleted row breaks the chain and
`manage.py verify_audit` names the first one.
"""

import datetime
import hashlib
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.utils import timezone

from .context import current_request_id
from .models import AuditEntry

logger = logging.getLogger("opsconsole.audit")

GENESIS_HASH = "0" * 64
# Any constant: it names the PostgreSQL advisory lock that serialises appends.
_CHAIN_LOCK_ID = 0x0A0D17


def _normalise(data: Any) -> Any:
    """Round-trip through JSON so that what is hashed equals what is stored and read back."""
    if data is None:
        return None
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


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
        if connection.vendor == "postgresql":
            # Appends must be serial for the chain to be linear; the lock is
            # released at commit, so it costs one round trip per action.
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_ID])
        last = AuditEntry.objects.order_by("-seq").values_list("seq", "hash").first()
        seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
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
    # The log stream sees every audited action too, with the request's id.
    logger.info(
        "%s by %s",
        action,
        entry.actor_label,
        extra={"audit_seq": seq, "action": action, "target": f"{entry.target_type}:{entry.target_id}"},
    )
    return entry


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    message: str


def verify_chain(entries: Iterable[AuditEntry] | None = None) -> Iterator[ChainProblem]:
    """Yield every break in the chain, in order. No problems means an intact log."""
    if entries is None:
        entries = AuditEntry.objects.order_by("seq").iterator(chunk_size=2000)
    expected_seq, prev_hash = 1, GENESIS_HASH
    for entry in entries:
        if entry.seq != expected_seq:
            yield ChainProblem(
                entry.seq,
                f"rows {expected_seq}..{entry.seq - 1} are missing (deleted)"
                if entry.seq > expected_seq
                else f"row {entry.seq} is out of sequence (inserted)",
            )
        if entry.prev_hash != prev_hash:
            yield ChainProblem(entry.seq, f"row {entry.seq} does not follow the row before it (inserted or deleted)")
        if compute_hash(entry) != entry.hash:
            yield ChainProblem(entry.seq, f"row {entry.seq} was edited: its content no longer matches its hash")
        expected_seq, prev_hash = entry.seq + 1, entry.hash


def snapshot(instance: models.Model, fields: Iterable[str]) -> dict:
    """The audit 'before'/'after' view of a model: the named fields, JSON-ready."""
    return _normalise({name: getattr(instance, name) for name in fields})
