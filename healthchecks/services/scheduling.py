"""Claiming due checks for the probe workers (leases, no check run twice)."""

from __future__ import annotations

import datetime
import logging
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from ..models import (
    Check,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claim:
    token: uuid.UUID
    queue: str
    check_ids: list[int]
    # When each check was due (same order as check_ids): how late it runs.
    due_at: list[datetime.datetime | None] = field(default_factory=list, compare=False)


def claim_due_checks(
    *, now: datetime.datetime | None = None, batch_size: int | None = None, limit: int | None = None
) -> list[Claim]:
    """Lease due checks in batches and return them grouped by queue.

    Two dispatchers never claim the same check: rows are locked with
    FOR UPDATE SKIP LOCKED and only rows without a live lease are taken. A
    lease lasts the check's timeout plus HEALTHCHECK_LEASE_MARGIN_SECONDS;
    if the worker dies, the check is due again once it expires.

    At most `limit` (HEALTHCHECK_DISPATCH_LIMIT) checks are leased at once:
    a dispatch claims only what is left after the live leases. When the
    workers fall behind, checks then wait unclaimed (they run late) instead
    of in queued batches whose leases run out before a worker takes them,
    which would probe them twice and fall further behind.
    """
    now = now or timezone.now()
    batch_size = batch_size or settings.HEALTHCHECK_BATCH_SIZE
    limit = (limit or settings.HEALTHCHECK_DISPATCH_LIMIT) - Check.objects.filter(lease_until__gt=now).count()
    if limit <= 0:
        log.warning("health checks: every lease is taken, the workers are behind; nothing dispatched")
        return []
    margin = datetime.timedelta(seconds=settings.HEALTHCHECK_LEASE_MARGIN_SECONDS)
    if connection.vendor == "postgresql":
        return _claim_postgresql(now, batch_size, limit, margin)
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
                by_queue.setdefault(queue or settings.HEALTHCHECK_DEFAULT_QUEUE, []).append((check_id, timeout))
            for queue, items in by_queue.items():
                token = uuid.uuid4()
                ids = [check_id for check_id, _ in items]
                lease_until = now + margin + datetime.timedelta(seconds=max(timeout for _, timeout in items))
                Check.objects.filter(id__in=ids).update(
                    lease_until=lease_until, lease_token=token, scheduled_at=F("next_due_at")
                )
                claims.append(Claim(token, queue, ids, [None] * len(ids)))
        claimed += len(rows)
        if len(rows) < batch_size:
            break
    return claims


def _claim_postgresql(now: datetime.datetime, batch_size: int, limit: int, margin: datetime.timedelta) -> list[Claim]:
    """One statement per batch: lock the due rows (SKIP LOCKED) and lease
    them in the same UPDATE … RETURNING, each for its own timeout + margin.

    A leased check's next_due_at moves to the end of its lease (when it is
    due again if its worker dies) and the time it was due to scheduled_at
    (the result moves next_due_at to one interval after it: see
    results.record_results).
    So leased rows leave the front of the due index at once: each batch
    reads only the rows it claims, instead of scanning past every check
    claimed before it (quadratic when a tick claims thousands). Checks that
    never ran (next_due_at NULL) go first, by the index too.

    The batch's rows share one token; a batch that spans queues gets a
    token per queue (one more UPDATE per extra queue, rare).
    """
    table = Check._meta.db_table
    claims: list[Claim] = []
    claimed = 0
    for due in ("next_due_at IS NULL", "next_due_at <= %s"):
        while claimed < limit:
            size = min(batch_size, limit - claimed)
            token = uuid.uuid4()
            params = [token, now, margin.total_seconds(), now, margin.total_seconds()]
            params += [now] if "%s" in due else []
            params += [now, size]
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {table} AS c SET lease_token = %s, scheduled_at = d.next_due_at, "
                    "lease_until = %s + make_interval(secs => c.timeout_seconds + %s), "
                    "next_due_at = %s + make_interval(secs => c.timeout_seconds + %s) "
                    f"FROM (SELECT id, next_due_at FROM {table} WHERE enabled AND {due} "
                    "AND (lease_until IS NULL OR lease_until <= %s) "
                    "ORDER BY next_due_at, id LIMIT %s FOR UPDATE SKIP LOCKED) AS d "
                    "WHERE c.id = d.id RETURNING c.id, c.queue, d.next_due_at",  # nosec B608  # table from _meta, fixed conditions
                    params,
                )
                rows = cursor.fetchall()
                by_queue: dict[str, list[tuple[int, datetime.datetime | None]]] = {}
                for check_id, queue, due_at in sorted(rows):
                    by_queue.setdefault(queue or settings.HEALTHCHECK_DEFAULT_QUEUE, []).append((check_id, due_at))
                for number, (queue, items) in enumerate(by_queue.items()):
                    ids = [check_id for check_id, _ in items]
                    queue_token = token
                    if number:
                        queue_token = uuid.uuid4()
                        Check.objects.filter(id__in=ids).update(lease_token=queue_token)
                    claims.append(Claim(queue_token, queue, ids, [due_at for _, due_at in items]))
            claimed += len(rows)
            if len(rows) < size:
                break
    return claims
