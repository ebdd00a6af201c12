"""Beat tasks of the checklists app: thin wrappers around one service each.

Every task is safe to run twice (or from two beat processes at once): the
services are idempotent (unique slot constraint, conditional UPDATEs).
"""

from celery import shared_task
from django.db import OperationalError

from . import services

_COMMON = {
    "ignore_result": True,
    "acks_late": True,
    "time_limit": 120,
    "soft_time_limit": 100,
    # Only a lost database connection is worth a retry; anything else is a bug.
    "autoretry_for": (OperationalError,),
    "retry_backoff": True,
    "max_retries": 3,
}


@shared_task(name="checklists.tasks.create_due_runs", **_COMMON)
def create_due_runs() -> int:
    return len(services.create_due_runs())


@shared_task(name="checklists.tasks.mark_missed_runs", **_COMMON)
def mark_missed_runs() -> int:
    return len(services.mark_missed_runs())


@shared_task(name="checklists.tasks.refresh_automatic_items", **_COMMON)
def refresh_automatic_items() -> int:
    return services.refresh_automatic_items()
