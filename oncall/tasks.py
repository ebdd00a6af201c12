"""Thin, idempotent Celery tasks of the on-call app (routes and beat in settings)."""

from celery import shared_task

from . import escalation, reminders, services


@shared_task(time_limit=300, soft_time_limit=270)
def materialise_schedules() -> int:
    """Hourly: keep every rotation's computed shifts materialised to the horizon."""
    return services.materialise_all()


@shared_task(time_limit=120, soft_time_limit=100)
def send_reminders() -> int:
    """Every minute: reminders before shifts start, each sent once."""
    return reminders.send_due_reminders()


@shared_task(time_limit=120, soft_time_limit=100)
def escalate_due() -> dict:
    """Every 30 s: page each level that fell due (exactly once; see oncall.escalation)."""
    return escalation.escalate_due()
