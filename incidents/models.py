"""Incidents, their SEV table, and their append-only timelines.

The database enforces the invariants: one incident id per day and number,
at most one open incident per alert group (dedup key), and timeline rows
that are never updated or deleted (a trigger, see migration 0002).
"""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from opsconsole.models import Service


class SeverityLevel(models.Model):
    """One row of the SEV table (seeds: SEV-1 complete outage, 15 min to respond...).

    The primary key is the level number, so `Incident.severity_id` is the SEV number.
    """

    level = models.PositiveSmallIntegerField(primary_key=True)
    name = models.CharField(max_length=20, unique=True)
    definition = models.CharField(max_length=200)
    examples = models.CharField(max_length=300, blank=True)
    ack_target_minutes = models.PositiveIntegerField(help_text="Time to acknowledge (respond).")
    resolve_target_minutes = models.PositiveIntegerField(help_text="Time to resolve.")

    class Meta:
        ordering = ["level"]
        constraints = [
            models.CheckConstraint(
                condition=Q(level__gte=1) & Q(level__lte=9),
                name="incidents_sev_level_range",
                violation_error_message="SEV levels run from 1 to 9.",
            ),
            models.CheckConstraint(
                condition=Q(ack_target_minutes__gt=0),
                name="incidents_sev_ack_positive",
                violation_error_message="The acknowledge target must be at least one minute.",
            ),
            models.CheckConstraint(
                condition=Q(resolve_target_minutes__gte=models.F("ack_target_minutes")),
                name="incidents_sev_resolve_after_ack",
                violation_error_message="The resolve target cannot be shorter than the acknowledge target.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} — {self.definition}"

    @property
    def css(self) -> str:
        return f"sev-{self.level}"


class DailyCounter(models.Model):
    """The last incident number handed out for one day (INC-YYYY-MM-DD-NNN).

    Incremented with one atomic upsert (see services._next_reference): the
    row lock it takes serialises concurrent declares, so two incidents
    declared at the same instant get different numbers.
    """

    day = models.DateField(primary_key=True)
    last = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.day}: {self.last}"


class Status(models.TextChoices):
    TRIGGERED = "triggered", "Triggered"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    MITIGATED = "mitigated", "Mitigated"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"


OPEN_STATUSES = (Status.TRIGGERED, Status.ACKNOWLEDGED, Status.MITIGATED)


class IncidentQuerySet(models.QuerySet):
    def open(self) -> "IncidentQuerySet":
        return self.filter(status__in=OPEN_STATUSES)


class Incident(models.Model):
    reference = models.CharField(max_length=24, unique=True, editable=False)
    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True)
    severity = models.ForeignKey(SeverityLevel, on_delete=models.PROTECT, related_name="incidents")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.TRIGGERED, db_index=True)
    commander = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    comms_lead = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="communications lead",
    )
    responders = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="incidents_responding")
    services = models.ManyToManyField(Service, blank=True, related_name="incidents")
    tags = models.JSONField(default=list, blank=True)
    customer_impact = models.TextField(blank=True)
    restricted = models.BooleanField(
        default=False,
        help_text="Security or data breach: visible only to participants, Managers and Admins.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Alert group (Alertmanager groupKey) or check that opened it; "" when declared by hand.
    dedup_key = models.CharField(max_length=300, blank=True, db_index=True)
    source_kind = models.CharField(max_length=20, default="manual")

    declared_at = models.DateTimeField(default=timezone.now, db_index=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    mitigated_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Deadlines from the SEV table, recomputed when the SEV changes; stored so
    # that the list can filter and mark breaches in SQL.
    ack_due_at = models.DateTimeField()
    resolve_due_at = models.DateTimeField()
    reopen_count = models.PositiveIntegerField(default=0)
    # Last human/alert timeline activity (nudges do not count), and the
    # activity time the commander was last nudged about: one nudge per quiet period.
    last_activity_at = models.DateTimeField(default=timezone.now)
    nudged_activity_at = models.DateTimeField(null=True, blank=True)
    unassigned_nudged_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = IncidentQuerySet.as_manager()

    class Meta:
        ordering = ["-declared_at"]
        constraints = [
            # Two deliveries for one alert group racing each other open one incident, not two.
            models.UniqueConstraint(
                fields=["dedup_key"],
                condition=Q(status__in=[s.value for s in OPEN_STATUSES]) & ~Q(dedup_key=""),
                name="incidents_one_open_per_dedup_key",
            ),
            models.CheckConstraint(condition=Q(status__in=Status.values), name="incidents_status_valid"),
        ]
        indexes = [models.Index(fields=["status", "severity"])]

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def compute_due(self, level: SeverityLevel) -> tuple:
        return (
            self.declared_at + timedelta(minutes=level.ack_target_minutes),
            self.declared_at + timedelta(minutes=level.resolve_target_minutes),
        )

    @property
    def ack_breached(self) -> bool:
        done = self.acknowledged_at or timezone.now()
        return done > self.ack_due_at

    @property
    def resolve_breached(self) -> bool:
        done = self.resolved_at or timezone.now()
        return done > self.resolve_due_at

    @property
    def breached(self) -> bool:
        return self.ack_breached or self.resolve_breached

    def is_participant(self, user) -> bool:
        """Needs `responders` prefetched to avoid a query per call on lists."""
        if not getattr(user, "is_authenticated", False):
            return False
        if user.pk in (self.commander_id, self.comms_lead_id, self.created_by_id):
            return True
        return any(r.pk == user.pk for r in self.responders.all())

    def is_assigned(self, user) -> bool:
        if not getattr(user, "is_authenticated", False):
            return False
        if user.pk in (self.commander_id, self.comms_lead_id):
            return True
        # Uses the prefetched responders when the selector loaded them.
        return any(r.pk == user.pk for r in self.responders.all())


class EventKind(models.TextChoices):
    DECLARED = "declared", "Declared"
    STATUS = "status", "Status change"
    SEVERITY = "severity", "SEV change"
    ROLE = "role", "Role change"
    NOTE = "note", "Note"
    ALERT = "alert", "Alert"
    CHECK = "check", "Check state change"
    RUNBOOK = "runbook", "Runbook step"
    REMEDIATION = "remediation", "Remediation"
    ESCALATION = "escalation", "Escalation"
    NOTIFICATION = "notification", "Notification"
    NUDGE = "nudge", "Nudge"
    UPDATE = "update", "Details changed"
    REVIEW = "review", "Post-incident review"


# Kinds written by the console about itself: they do not count as activity
# for the "quiet incident" nudge (or a nudge would reset its own timer).
PASSIVE_KINDS = frozenset({EventKind.NUDGE, EventKind.NOTIFICATION})


class TimelineEvent(models.Model):
    """One append-only timeline entry. The database refuses UPDATE and DELETE.

    A correction is a new event whose `corrects` points at the corrected one.
    Stars live in EventStar so that starring never touches this table.
    """

    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=20, choices=EventKind.choices, db_index=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    author_label = models.CharField(max_length=150, blank=True, help_text="System source when there is no author.")
    text = models.TextField(blank=True, help_text="Markdown as written.")
    html = models.TextField(blank=True, help_text="Sanitised rendering of text.")
    occurred_at = models.DateTimeField(default=timezone.now)
    recorded_at = models.DateTimeField(default=timezone.now)
    corrects = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="corrections")
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["incident", "-occurred_at", "-id"], name="incidents_tl_page"),
            models.Index(fields=["incident", "id"], name="incidents_tl_since"),
        ]

    def __str__(self) -> str:
        return f"{self.incident_id} {self.kind} @ {self.occurred_at:%Y-%m-%d %H:%M}"

    @property
    def backdated(self) -> bool:
        return (self.recorded_at - self.occurred_at).total_seconds() > 60


class EventStar(models.Model):
    """A key event starred for the post-incident review (one star per event)."""

    event = models.OneToOneField(TimelineEvent, on_delete=models.CASCADE, primary_key=True, related_name="star")
    starred_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    starred_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"star on {self.event_id}"


class AlertSeverityMapping(models.Model):
    """Alertmanager `severity` label value → SEV level (edited by Managers)."""

    label_value = models.CharField(max_length=50, unique=True)
    severity = models.ForeignKey(SeverityLevel, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["severity_id", "label_value"]

    def __str__(self) -> str:
        return f"{self.label_value} → SEV-{self.severity_id}"


class IncidentSignal(models.Model):
    """The latest state of one alert (or check) attached to an incident.

    Used to ask for confirmation when resolving while alerts still fire.
    """

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="signals")
    key = models.CharField(max_length=300)
    label = models.CharField(max_length=300, blank=True)
    firing = models.BooleanField(default=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["incident", "key"], name="incidents_signal_unique")]

    def __str__(self) -> str:
        return f"{self.label or self.key} ({'firing' if self.firing else 'resolved'})"


class AlertReceipt(models.Model):
    """One alert notification already processed: retried deliveries are ignored.

    `key` = sha256(groupKey, fingerprint, status, startsAt, endsAt); the
    unique constraint makes the check race-free.
    """

    key = models.CharField(max_length=64, unique=True)
    group_key = models.CharField(max_length=300)
    fingerprint = models.CharField(max_length=100)
    status = models.CharField(max_length=10)
    incident = models.ForeignKey(Incident, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.fingerprint} {self.status}"


# Post-incident reviews live in their own modules but belong to this app.
from .reviews.models import (  # noqa: E402,F401
    ActionItem,
    Recurrence,
    Review,
    ReviewComment,
    ReviewEvent,
    ReviewVersion,
)
