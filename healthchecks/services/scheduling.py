"""Claiming due checks for the probe workers (leases, no check run twice)."""

from __future__ import annotations

import datetime
import logging
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Q
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
                by_queue.setdefault(queue or settings.HEALTHCHECK_DEFAULT_QUEUE, []).append((check_id, timeout))
            for queue, items in by_queue.items():
                token = uuid.uuid4()
                ids = [check_id for check_id, _ in items]
                lease_until = now + margin + datetime.timedelta(seconds=max(timeout for _, timeout in items))
                Check.objects.filter(id__in=ids).update(lease_until=lease_until, lease_token=token)
                claims.append(Claim(token, queue, ids))
        claimed += len(rows)
        if len(rows) < batch_size:
            break
    return claims
