"""The watchdog's question for health checks (registered in apps.py):
enabled checks whose probe is late by more than two of their intervals
(and the grace): the dispatcher (beat) or the probe workers are not keeping
up, or not running."""

import datetime

from django.db import connection
from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, Q, Value

from opsconsole.watchdog import Finding

from .models import Check


def late_checks(now: datetime.datetime, grace: datetime.timedelta) -> Finding:
    late = Check.objects.filter(enabled=True, next_due_at__isnull=False)
    if connection.vendor == "postgresql":
        two_intervals = ExpressionWrapper(
            F("interval_seconds") * Value(datetime.timedelta(seconds=2), output_field=DurationField()),
            output_field=DurationField(),
        )
        late_at = ExpressionWrapper(F("next_due_at") + two_intervals + Value(grace), output_field=DateTimeField())
        late = late.annotate(late_at=late_at).filter(late_at__lt=now)
    else:
        # SQLite (`make run`) cannot multiply a duration by a column: one
        # condition per distinct interval (a handful), one query more.
        overdue = Q(pk__in=[])
        intervals = Check.objects.filter(enabled=True).values_list("interval_seconds", flat=True)
        for seconds in intervals.distinct().order_by():
            due_before = now - grace - datetime.timedelta(seconds=2 * seconds)
            overdue |= Q(interval_seconds=seconds, next_due_at__lt=due_before)
        late = late.filter(overdue)
    rows = list(late.order_by("next_due_at").values_list("name", "next_due_at")[:5])
    if not rows:
        return Finding()
    return Finding(late.count(), rows[0][1], [f"{name} due {due:%Y-%m-%d %H:%M:%S}Z" for name, due in rows])
