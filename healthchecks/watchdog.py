"""The watchdog's question for health checks (registered in apps.py):
enabled checks whose probe is late by more than two of their intervals
(and the grace): the dispatcher (beat) or the probe workers are not keeping
up, or not running."""

import datetime

from django.db.models import Q

from opsconsole.watchdog import Finding

from .models import Check


def late_checks(now: datetime.datetime, grace: datetime.timedelta) -> Finding:
    # One condition per distinct interval (a handful), not interval × 2 in
    # SQL: SQLite (`make run`) cannot multiply a duration by a column.
    intervals = Check.objects.filter(enabled=True).values_list("interval_seconds", flat=True).distinct().order_by()
    overdue = Q()
    for seconds in intervals:
        overdue |= Q(interval_seconds=seconds, next_due_at__lt=now - grace - datetime.timedelta(seconds=2 * seconds))
    if not overdue:
        return Finding()
    late = Check.objects.filter(overdue, enabled=True, next_due_at__isnull=False)
    rows = list(late.order_by("next_due_at").values_list("name", "next_due_at")[:5])
    if not rows:
        return Finding()
    return Finding(late.count(), rows[0][1], [f"{name} due {due:%Y-%m-%d %H:%M:%S}Z" for name, due in rows])
