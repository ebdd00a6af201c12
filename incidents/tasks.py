"""Celery tasks of the incidents app. Thin: call one service."""

from celery import shared_task

from . import services


@shared_task(name="incidents.tasks.send_nudges", ignore_result=True, soft_time_limit=50, time_limit=60)
def send_nudges() -> dict[str, int]:
    """Beat, every minute. Safe to run twice or concurrently: each reminder is
    claimed with a conditional UPDATE (see services.send_nudges)."""
    return services.send_nudges()
