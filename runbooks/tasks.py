"""Celery tasks of runbooks. Thin: load by id, call one service.

acks_late (the project default) plus the conditional claim in
runbooks.execution.perform_action: a task redelivered after a worker died
never applies a non-idempotent action twice. No autoretry: an action that
failed is reported, and a person decides whether to request it again.
"""

from celery import shared_task
from django.conf import settings

from . import execution

# The action's own timeout bounds each call; the task limit bounds the whole.
_HARD_LIMIT = settings.RUNBOOK_ACTION_TIMEOUT_SECONDS * 4 + 30


@shared_task(
    name="runbooks.tasks.perform_action",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=_HARD_LIMIT - 10,
    time_limit=_HARD_LIMIT,
)
def perform_action(action_run_id: int) -> str:
    return execution.perform_action(action_run_id)


@shared_task(name="runbooks.tasks.verify_fix", acks_late=True, soft_time_limit=120, time_limit=150)
def verify_fix(action_run_id: int, check_id: int) -> str:
    """Idempotent enough: a second run records the same verdict again."""
    return execution.verify_fix(action_run_id, check_id)


@shared_task(name="runbooks.tasks.auto_remediate", acks_late=True, soft_time_limit=120, time_limit=150)
def auto_remediate(change_id: int) -> str:
    """Safe to run twice: one run per state change (ActionRun.trigger is unique)."""
    from . import remediation

    return remediation.auto_remediate(change_id)
