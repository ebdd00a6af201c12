"""Celery tasks of the health checks: thin, safe to run twice."""

from __future__ import annotations

import logging
import uuid

from celery import shared_task

from . import services

log = logging.getLogger(__name__)


@shared_task(name="healthchecks.tasks.dispatch_due_checks", time_limit=60, soft_time_limit=50)
def dispatch_due_checks() -> int:
    """Beat, every HEALTHCHECK_DISPATCH_SECONDS: lease due checks and send
    one batch task per batch to the batch's queue. Two beats never send the
    same check (see services.claim_due_checks)."""
    claims = services.claim_due_checks()
    for claim in claims:
        run_check_batch.apply_async(args=[claim.check_ids, str(claim.token)], queue=claim.queue)
    return sum(len(claim.check_ids) for claim in claims)


@shared_task(name="healthchecks.tasks.run_check_batch", time_limit=300, soft_time_limit=240, acks_late=True)
def run_check_batch(check_ids: list[int], lease_token: str) -> int:
    """Probe a leased batch and write the results. Idempotent: only checks
    still holding this lease are written, so a redelivered batch does nothing."""
    changes = services.run_checks(check_ids, lease_token=uuid.UUID(lease_token))
    return len(changes)


@shared_task(
    name="healthchecks.tasks.state_change_action",
    time_limit=60,
    soft_time_limit=50,
    autoretry_for=(ConnectionError,),
    retry_backoff=True,
    max_retries=5,
)
def state_change_action(change_id: int) -> bool:
    """Open or update the incident of a check whose state changed (opt-in per check)."""
    from .incident_hook import open_or_update_incident

    return open_or_update_incident(change_id)


@shared_task(name="healthchecks.tasks.prune_results", time_limit=1800, soft_time_limit=1700)
def prune_results() -> list[int]:
    """Hourly: roll up the last hours, then prune old raw results and rollups. Idempotent."""
    raw, rollups = services.prune_results()
    log.info("pruned check results", extra={"raw": raw, "rollups": rollups})
    return [raw, rollups]
