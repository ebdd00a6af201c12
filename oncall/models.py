"""On-call models: rotations and their computed schedule, overrides, calendar
feeds and reminders. Escalation policies live in models_escalation.py and
handoffs in models_handoff.py (imported at the bottom so Django sees them)."""

import datetime
import hashlib
import secrets

from django.conf import settings
from django.db import models

from opsconsole.models import TIMEZONE_CHOICES


class ShiftLength(models.TextChoices):
    DAILY = "daily", "Daily (24 h)"
    WEEKLY = "weekly", "Weekly (7 days)"
    CUSTOM = "custom", "Custom (hours)"


SHIFT_HOURS = {ShiftLength.DAILY: 24, ShiftLength.WEEKLY: 7 * 24}


class Rotation(models.Model):
    """A group of people who take turns being on call for some services.

    The schedule is computed (oncall.schedule): shift k starts at the
    handoff time on `start_date` plus k shift lengths of *wall-clock* time in
    the rotation's timezone, so a 09:00 handoff stays at 09:00 across DST,
    and goes to member k mod n. Overrides replace whoever is on call for a
    time range. The result is materialised into Shift rows (services).

    No services means the rotation covers every service (a primary SRE
    rotation); a rotation with services covers only those (a database rotation).
    """

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    services = models.ManyToManyField(
        "opsconsole.Service",
        blank=True,
        related_name="rotations",
        help_text="Services this rotation is paged for. None selected: all services.",
    )
    timezone = models.CharField(
        max_length=64,
        choices=TIMEZONE_CHOICES,
        default="UTC",
        help_text="The timezone the handoff time is in (times are stored in UTC).",
    )
    shift_length = models.CharField(max_length=10, choices=ShiftLength.choices, default=ShiftLength.WEEKLY)
    custom_hours = models.PositiveIntegerField(
        default=12, help_text="Length of one shift in hours, when the shift length is custom."
    )
    handoff_time = models.TimeField(default=datetime.time(9, 0), help_text="Local time shifts change hands.")
    start_date = models.DateField(
        default=datetime.date.today, help_text="The first member's first shift starts on this day."
    )
    # The end of the materialised window: shifts beyond it are not in Shift yet.
    materialised_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(custom_hours__gte=1) & models.Q(custom_hours__lte=24 * 28),
                name="rotation_custom_hours_range",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def hours(self) -> int:
        return SHIFT_HOURS.get(self.shift_length, self.custom_hours)

    @property
    def length_label(self) -> str:
        if self.shift_length == ShiftLength.CUSTOM:
            return f"{self.custom_hours} h"
        return self.get_shift_length_display().split(" ")[0]


class RotationMember(models.Model):
    """One person in a rotation's order (position 0 takes the first shift)."""

    rotation = models.ForeignKey(Rotation, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rotation_memberships")
    position = models.PositiveIntegerField()

    class Meta:
        ordering = ["rotation", "position"]
        constraints = [
            models.UniqueConstraint(fields=["rotation", "position"], name="oncall_member_position_unique"),
            models.UniqueConstraint(fields=["rotation", "user"], name="oncall_member_user_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.rotation}: #{self.position + 1} {self.user}"


class Override(models.Model):
    """`user` is on call for `rotation` from starts_at to ends_at, whoever the
    schedule says: a swap, or cover for a holiday. Overrides of one rotation
    never overlap (services.override_create; an exclusion constraint on PostgreSQL)."""

    class Kind(models.TextChoices):
        SWAP = "swap", "Swap"
        HOLIDAY = "holiday", "Holiday cover"
        OTHER = "other", "Other"

    rotation = models.ForeignKey(Rotation, on_delete=models.CASCADE, related_name="overrides")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oncall_overrides")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.SWAP)
    reason = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["starts_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")), name="override_ends_after_start"
            )
        ]

    def __str__(self) -> str:
        return f"{self.rotation}: {self.user} {self.starts_at:%Y-%m-%d %H:%M}–{self.ends_at:%Y-%m-%d %H:%M} UTC"


class Shift(models.Model):
    """One person on call for one rotation from starts_at (inclusive) to ends_at
    (exclusive): the materialised, final schedule (after overrides).

    Written only by oncall.services.rotation_materialise. Shifts of one rotation
    never overlap: the schedule is computed without overlaps, and on PostgreSQL
    an exclusion constraint (btree_gist, tstzrange &&) refuses any that would.
    """

    class Source(models.TextChoices):
        ROTATION = "rotation", "Rotation"
        OVERRIDE = "override", "Override"

    rotation = models.ForeignKey(Rotation, on_delete=models.CASCADE, related_name="shifts")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="shifts")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.ROTATION)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["starts_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=models.Q(ends_at__gt=models.F("starts_at")), name="shift_ends_after_start")
        ]
        indexes = [models.Index(fields=["rotation", "starts_at", "ends_at"], name="shift_rotation_time")]

    def __str__(self) -> str:
        return f"{self.rotation}: {self.user} {self.starts_at:%Y-%m-%d %H:%M}–{self.ends_at:%H:%M} UTC"

    @property
    def duration_label(self) -> str:
        hours = (self.ends_at - self.starts_at).total_seconds() / 3600
        return f"{hours:g} h"


class CalendarFeed(models.Model):
    """A person's private iCalendar feed. Only the token's SHA-256 is stored;
    revoking sets revoked_at, and a new feed gets a new token (old links die)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feeds")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user"], condition=models.Q(revoked_at__isnull=True), name="oncall_one_live_feed_per_user"
            )
        ]

    def __str__(self) -> str:
        return f"Calendar feed of {self.user}"

    @staticmethod
    def generate() -> tuple[str, str]:
        raw = secrets.token_urlsafe(32)
        return raw, CalendarFeed.hash(raw)

    @staticmethod
    def hash(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()


class SentReminder(models.Model):
    """A reminder sent before a shift starts: the unique constraint makes each
    (person, rotation, shift start, offset) reminder go out exactly once, even
    when the schedule is re-materialised (shift rows are replaced) or two
    workers sweep at once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    rotation = models.ForeignKey(Rotation, on_delete=models.CASCADE, related_name="+")
    shift_starts_at = models.DateTimeField()
    offset_minutes = models.PositiveIntegerField()
    sent_at = models.DateTimeField(auto_now_add=True)
    skipped = models.BooleanField(default=False, help_text="Superseded by a later (shorter) reminder.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "rotation", "shift_starts_at", "offset_minutes"], name="oncall_reminder_once"
            )
        ]

    def __str__(self) -> str:
        return f"Reminder {self.offset_minutes} min before {self.rotation_id}@{self.shift_starts_at:%Y-%m-%d %H:%M}"


# --- Escalation ---------------------------------------------------------------------------


class EscalationPolicy(models.Model):
    """Who is paged, in which order, while an incident stays unacknowledged.

    The policy lists its services (PolicyService), so the core's Service model
    knows nothing of on-call; a service belongs to at most one policy. A policy
    marked default covers incidents whose services have no policy of their own.
    """

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    is_default = models.BooleanField(default=False, help_text="Used for incidents whose services have no policy.")
    # Moved on every save: an edit made from an older version is refused.
    version = models.PositiveIntegerField(default=0, editable=False)
    services = models.ManyToManyField(
        "opsconsole.Service", through="PolicyService", blank=True, related_name="escalation_policies"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "escalation policies"
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=models.Q(is_default=True), name="oncall_one_default_policy"
            )
        ]

    def __str__(self) -> str:
        return self.name


class PolicyService(models.Model):
    policy = models.ForeignKey(EscalationPolicy, on_delete=models.CASCADE, related_name="policy_services")
    service = models.OneToOneField("opsconsole.Service", on_delete=models.CASCADE, related_name="+")

    class Meta:
        verbose_name = "service of the policy"

    def __str__(self) -> str:
        return f"{self.service} → {self.policy}"


class EscalationLevel(models.Model):
    """One rung of the ladder: page a rotation's on-call person and/or named
    people, then wait `wait_minutes` for an acknowledgement before the next."""

    policy = models.ForeignKey(EscalationPolicy, on_delete=models.CASCADE, related_name="levels")
    position = models.PositiveIntegerField(help_text="1 is paged first.")
    name = models.CharField(max_length=100, help_text="e.g. “On-call engineer”, “Team lead”.")
    rotation = models.ForeignKey(
        Rotation, on_delete=models.SET_NULL, null=True, blank=True, related_name="escalation_levels"
    )
    users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="escalation_levels")
    wait_minutes = models.PositiveIntegerField(default=15)

    class Meta:
        ordering = ["policy", "position"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "position"], name="oncall_level_position_unique"),
            models.CheckConstraint(condition=models.Q(wait_minutes__gte=1), name="oncall_level_wait_positive"),
            models.CheckConstraint(condition=models.Q(position__gte=1), name="oncall_level_position_positive"),
        ]

    def __str__(self) -> str:
        return f"L{self.position} {self.name}"


class IncidentEscalation(models.Model):
    """The escalation clock of one incident. `next_position` is the level to
    page when `next_due_at` passes; advancing is a locked read of this row plus
    a unique EscalationStep, so each level is paged exactly once."""

    class Stop(models.TextChoices):
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        EXHAUSTED = "exhausted", "Every level paged"
        CLOSED = "closed", "Incident no longer triggered"

    incident = models.OneToOneField("incidents.Incident", on_delete=models.CASCADE, related_name="escalation")
    policy = models.ForeignKey(EscalationPolicy, on_delete=models.PROTECT, related_name="escalations")
    started_at = models.DateTimeField()
    current_position = models.PositiveIntegerField(default=0, help_text="Last level paged (0: none yet).")
    next_position = models.PositiveIntegerField(default=1)
    next_due_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    stopped_reason = models.CharField(max_length=20, choices=Stop.choices, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["next_due_at"], condition=models.Q(stopped_at__isnull=True), name="oncall_escalation_due"
            )
        ]

    def __str__(self) -> str:
        return f"Escalation of incident {self.incident_id}"


class EscalationStep(models.Model):
    """One level paged for one incident: at most one row per (escalation, level)."""

    escalation = models.ForeignKey(IncidentEscalation, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField()
    level_name = models.CharField(max_length=100)
    due_at = models.DateTimeField()
    paged_at = models.DateTimeField()
    late = models.BooleanField(default=False, help_text="Paged well after it was due (beat was down).")
    recipients = models.JSONField(default=list, help_text="Usernames paged.")

    class Meta:
        ordering = ["escalation", "position"]
        constraints = [models.UniqueConstraint(fields=["escalation", "position"], name="oncall_step_once_per_level")]

    def __str__(self) -> str:
        return f"L{self.position} of escalation {self.escalation_id}"


# --- Handoffs ------------------------------------------------------------------------------


# Length limits of what people type on a handoff, in one place.
HANDOFF_MESSAGE_MAX_LENGTH = 2000  # a question, an answer, an item's notes
HANDOFF_SECTION_MAX_LENGTH = 10000  # recent changes, known issues


class HandoffStatus(models.TextChoices):  # module-level: Meta's constraint names a value
    SUBMITTED = "submitted", "Waiting for the incoming engineer"
    QUESTIONED = "questioned", "Question asked"
    ANSWERED = "answered", "Question answered"
    ACKNOWLEDGED = "acknowledged", "Handoff confirmed"


class Handoff(models.Model):
    """The outgoing engineer's written shift-change report (the seeds' template),
    acknowledged by the incoming engineer or answered with a question."""

    Status = HandoffStatus

    rotation = models.ForeignKey(Rotation, on_delete=models.PROTECT, related_name="handoffs")
    outgoing = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="handoffs_given")
    incoming = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="handoffs_received"
    )
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.SUBMITTED, db_index=True)
    # Prefilled by the console, kept as they were at submission (a snapshot).
    system_status = models.JSONField(default=dict, blank=True)
    scheduled = models.JSONField(default=list, blank=True)
    activity = models.JSONField(default=list, blank=True, help_text="Runbook executions / remediations of the shift.")
    recent_changes = models.TextField(blank=True)
    known_issues = models.TextField(blank=True)
    submitted_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    confirmations = models.JSONField(default=list, blank=True, help_text="Handoff-confirmed items ticked.")
    question = models.TextField(blank=True)
    questioned_at = models.DateTimeField(null=True, blank=True)
    questioned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-submitted_at", "-pk"]
        indexes = [models.Index(fields=["rotation", "-submitted_at"], name="oncall_handoff_history")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(period_end__gte=models.F("period_start")), name="handoff_period_ordered"
            ),
            models.CheckConstraint(
                condition=~models.Q(status=HandoffStatus.ACKNOWLEDGED.value) | models.Q(acknowledged_at__isnull=False),
                name="handoff_acknowledged_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"Handoff {self.rotation}: {self.outgoing} → {self.incoming or '?'} ({self.submitted_at:%Y-%m-%d %H:%M})"


class HandoffItem(models.Model):
    """A row of "Outstanding issues". Open ones are carried over to the rotation's
    next handoff (carried_from) until someone closes them."""

    handoff = models.ForeignKey(Handoff, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField(default=0)
    incident = models.ForeignKey(
        "incidents.Incident", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    title = models.CharField(max_length=200)
    severity = models.CharField(max_length=20, blank=True)
    status = models.CharField(max_length=30, blank=True)
    notes = models.TextField(blank=True)
    closed = models.BooleanField(default=False)
    carried_from = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["handoff", "position", "pk"]

    def __str__(self) -> str:
        return self.title


class HandoffMessage(models.Model):
    """The question thread of a handoff: the incoming engineer asks, the outgoing
    one answers, in the app, timestamped (and audited by the services)."""

    class Kind(models.TextChoices):
        QUESTION = "question", "Question"
        ANSWER = "answer", "Answer"

    handoff = models.ForeignKey(Handoff, on_delete=models.CASCADE, related_name="messages")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["handoff", "created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} by {self.author} on {self.handoff_id}"
