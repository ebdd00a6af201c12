"""The watchdog's question for on-call (registered in apps.py): escalation
levels that fell due more than the grace ago and were not paged (beat or
the default worker is down, or escalate_due keeps failing)."""

import datetime

from opsconsole.watchdog import Finding

from .models import IncidentEscalation


def overdue_escalations(now: datetime.datetime, grace: datetime.timedelta) -> Finding:
    late = IncidentEscalation.objects.filter(stopped_at__isnull=True, next_due_at__lt=now - grace)
    rows = list(late.order_by("next_due_at").values_list("incident_id", "next_position", "next_due_at")[:5])
    if not rows:
        return Finding()
    examples = [f"incident {incident} level {position} due {due:%Y-%m-%d %H:%M}Z" for incident, position, due in rows]
    return Finding(late.count(), rows[0][2], examples)
