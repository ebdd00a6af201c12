"""Celery tasks of the core app. Thin: load by id, call one function."""

from celery import shared_task

from . import notifications


@shared_task(
    bind=True,
    name="opsconsole.tasks.send_delivery",
    acks_late=True,
    ignore_result=True,
    # The bound is NOTIFY_MAX_ATTEMPTS, counted in the database (so that it
    # survives a replay and a redelivered message): the task itself never
    # stops retrying on its own, delivery_attempt decides when it is dead.
    max_retries=None,
    soft_time_limit=60,
    time_limit=90,
)
def send_delivery(self, delivery_id: int) -> str:
    """Send one notification delivery.

    Idempotent: a sent or dead delivery is not sent again, and two workers
    running this for the same delivery never both send (see
    notifications.delivery_attempt). Transient failures retry with
    exponential backoff; permanent ones and the last attempt dead-letter it.
    """
    result = notifications.delivery_attempt(delivery_id)
    if result.outcome == "retry":
        raise self.retry(countdown=result.countdown)
    return result.outcome
