"""Reminders (Celery beat): quiet incidents and incidents nobody commands."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from opsconsole import audit

from ..models import EventKind, Incident, Status
from .announce import notify_about_incident
from .timeline import timeline_add_event


def send_nudges(*, now: datetime | None = None) -> dict[str, int]:
    """Remind people about incidents that need them.

    - an acknowledged incident with no timeline activity for
      INCIDENT_NUDGE_MINUTES reminds its commander, once per quiet period
      (new activity starts a new period);
    - an open incident without a commander for that long reminds whoever is
      on call, then again every INCIDENT_NUDGE_MINUTES until someone commands it.
    Idempotent: each reminder is claimed with a conditional UPDATE, so two
    beat ticks or two workers running this at once send it once.
    """
    now = now or timezone.now()
    quiet_before = now - timedelta(minutes=settings.INCIDENT_NUDGE_MINUTES)
    not_nudged = Q(nudged_activity_at__isnull=True) | ~Q(nudged_activity_at=F("last_activity_at"))
    sent = {"commander": 0, "on_call": 0}
    quiet = (
        Incident.objects.filter(status=Status.ACKNOWLEDGED, commander__isnull=False, last_activity_at__lt=quiet_before)
        .filter(not_nudged)
        .select_related("commander", "severity")[:200]
    )
    for incident in quiet:
        with transaction.atomic():
            claimed = Incident.objects.filter(
                not_nudged, pk=incident.pk, last_activity_at=incident.last_activity_at
            ).update(nudged_activity_at=F("last_activity_at"))
            if not claimed:
                continue
            minutes = int((now - incident.last_activity_at).total_seconds() // 60)
            commander = incident.commander
            notify_about_incident(
                "incident.nudge",
                incident,
                f"{incident.reference} has been quiet for {minutes} min",
                f"{incident.severity.name} {incident.title}: "
                f"no timeline activity for {minutes} minutes. "
                "Post an update, or mark it mitigated or resolved.",
                emails=[commander.email] if commander.email else [],
                webhook=False,
            )
            timeline_add_event(
                incident=incident,
                kind=EventKind.NUDGE,
                author_label="console",
                text=f"Reminded {commander}: no activity for {minutes} min.",
                data={"to": commander.get_username(), "reason": "quiet"},
            )
            audit.record(
                None,
                "incident.nudge_commander",
                incident,
                after={"commander": commander.get_username()},
            )
            sent["commander"] += 1
    reminded_lately = Q(unassigned_nudged_at__gte=quiet_before)
    unassigned = (
        Incident.objects.open()
        .filter(commander__isnull=True, declared_at__lt=quiet_before)
        .exclude(reminded_lately)
        .select_related("severity")[:200]
    )
    for incident in unassigned:
        with transaction.atomic():
            claimed = (
                Incident.objects.filter(pk=incident.pk, commander__isnull=True)
                .exclude(reminded_lately)
                .update(unassigned_nudged_at=now)
            )
            if not claimed:
                continue
            notify_about_incident(
                "incident.nudge",
                incident,
                f"{incident.reference} has no incident commander",
                f"{incident.severity.name} {incident.title} is "
                f"{incident.get_status_display().lower()} "
                "and nobody commands it. Take command or assign someone.",
                on_call=True,
            )
            timeline_add_event(
                incident=incident,
                kind=EventKind.NUDGE,
                author_label="console",
                text="Reminded the on-call engineer: no incident commander yet.",
                data={"reason": "no_commander"},
            )
            audit.record(None, "incident.nudge_on_call", incident)
            sent["on_call"] += 1
    return sent
