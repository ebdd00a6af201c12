"""The watchdog's question for health checks (registered in apps.py):
enabled checks whose probe is late by more than two of their intervals
(and the grace): the dispatcher (beat) or the probe workers are not keeping
up, or not running."""

import datetime

from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, Value

from opsconsole.watchdog import Finding

from .models import Check


def late_checks(now: datetime.datetime, grace: datetime.timedelta) -> Finding:
    two_intervals = ExpressionWrapper(
        F("interval_seconds") * Value(datetime.timedelta(seconds=2), output_field=DurationField()),
        output_field=DurationField(),
    )
    late = (
        Check.objects.filter(enabled=True, next_due_at__isnull=False)
        .annotate(
            late_at=ExpressionWrapper(F("next_due_at") + two_intervals + Value(grace), output_field=DateTimeField())
        )
        .filter(late_at__lt=now)
    )
    rows = list(late.order_by("next_due_at").values_list("name", "next_due_at")[:5])
    if not rows:
        return Finding()
    return Finding(late.count(), rows[0][1], [f"{name} due {due:%Y-%m-%d %H:%M:%S}Z" for name, due in rows])
