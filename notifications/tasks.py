"""Celery tasks of the notifications app. Thin: load by id, call one service."""

from celery import shared_task

from . import services


@shared_task(
    bind=True,
    name="notifications.tasks.send_delivery",
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
    services.delivery_attempt). Transient failures retry with
    exponential backoff; permanent ones and the last attempt dead-letter it.
    """
    result = services.delivery_attempt(delivery_id)
    if result.outcome == "retry":
        raise self.retry(countdown=result.countdown)
    return result.outcome


@shared_task(
    name="notifications.tasks.fan_out_deliveries",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=60,
    time_limit=90,
)
def fan_out_deliveries(delivery_ids: list[int]) -> int:
    """Queue one send_delivery per id (services.enqueue hands many over at once).
    Safe to run twice: a delivery already sent is not sent again."""
    services.enqueue_each(delivery_ids)
    return len(delivery_ids)


@shared_task(
    name="notifications.tasks.requeue_stale_deliveries",
    ignore_result=True,
    soft_time_limit=60,
    time_limit=90,
)
def requeue_stale_deliveries() -> int:
    """Beat, every minute: queue again deliveries whose message was lost. Safe to run twice."""
    return services.requeue_stale_deliveries()
