"""Heartbeat checks (dead man's switch): the ping a job sends, and the
rotation of the token in its URL.

The token in /health/ping/<token> is the only credential of an
unauthenticated URL: whoever holds it can report success or failure. It is
shown only to roles with `config.edit`, and rotating it makes the old URL
answer 404 at once.
"""

from __future__ import annotations

import uuid

from django.db import transaction
from django.utils import timezone

from opsconsole import audit
from opsconsole.roles import check_capability

from .models import Check
from .probes import ProbeSpec, run_batch_sync
from .services import record_results


def heartbeat_ping(*, token: uuid.UUID, failed: bool = False) -> Check | None:
    """A job's ping: note it and evaluate the heartbeat at once. Returns None
    for an unknown token or a check that is not a heartbeat."""
    now = timezone.now()
    updated = Check.objects.filter(heartbeat_token=token, kind=Check.Kind.HEARTBEAT).update(
        last_ping_at=now, last_ping_failed=failed
    )
    if not updated:
        return None
    check = Check.objects.select_related("service").get(heartbeat_token=token)
    result = run_batch_sync([ProbeSpec.from_check(check)])[0]
    record_results([(check.pk, result)], reschedule=False, now=now)
    return check


def heartbeat_rotate_token(*, actor, check: Check) -> Check:
    """Give the check a new ping token; the old URL stops working at once.
    The audit entry records the rotation, never a token."""
    check_capability(actor, "config.edit")
    with transaction.atomic():
        current = Check.objects.select_for_update().get(pk=check.pk)
        current.heartbeat_token = uuid.uuid4()
        current.save(update_fields=["heartbeat_token"])
        audit.record(actor, "healthchecks.heartbeat_rotate", current, after={"rotated": True})
    return current
