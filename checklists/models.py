"""Checklist templates, their schedules, and the runs they produce.

A run copies (snapshots) its template's items when it is created, so that a
later edit of the template never changes history. The database enforces the
invariants: one run per schedule slot, valid states, ticks that carry who
and when.
"""

import datetime
import zoneinfo

from django.conf import settings
from django.db import models
from django.db.models import Q

from opsconsole.models import TIMEZONE_CHOICES
from opsconsole.validators import validate_link_url

WEEKDAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


class ChecklistTemplate(models.Model):
    """A named list of items (morning, evening, maintenance window, release...)."""

    name = models.CharField(max_length=150, unique=True)
    description = models.TextField(blank=True)
    offers_handoff = models.BooleanField(
        default=False,
        help_text="Show “Hand off to on-call” on its runs (the evening checklist).",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TemplateItem(models.Model):
    template = models.ForeignKey(ChecklistTemplate, on_delete=models.CASCADE, related_name="items")
    order = models.PositiveIntegerField(default=0)
    section = models.CharField(max_length=150, blank=True, help_text="Group heading, e.g. “Pre-deployment”.")
    text = models.CharField(max_length=300)
    help = models.TextField(blank=True)
    required = models.BooleanField(default=True)
    # The console's own runbook (a real reference: follows renames, survives
    # edits, offers "Start"); runbook_url is kept for runbooks kept elsewhere
    # (a wiki page). Rendered as a link: absolute http(s) only (opsconsole.validators).
    runbook = models.ForeignKey("runbooks.Runbook", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    runbook_url = models.CharField(
        max_length=500,
        blank=True,
        validators=[validate_link_url],
        verbose_name="External runbook link",
        help_text="Only for a runbook kept outside the console.",
    )
    expected_evidence = models.CharField(max_length=300, blank=True)
    health_check = models.ForeignKey(
        "healthchecks.Check",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Ticked automatically when this health check is passing.",
    )

    class Meta:
        ordering = ["template", "order", "id"]

    def __str__(self) -> str:
        return self.text


class Schedule(models.Model):
    """When a template produces runs: a time of day on some weekdays, in a timezone."""

    template = models.ForeignKey(ChecklistTemplate, on_delete=models.CASCADE, related_name="schedules")
    time_of_day = models.TimeField()
    # Digits 0 (Monday) to 6 (Sunday), e.g. "01234" for weekdays.
    days_of_week = models.CharField(max_length=7, default="01234")
    timezone = models.CharField(max_length=64, choices=TIMEZONE_CHOICES, default="UTC")
    due_within = models.DurationField(default=datetime.timedelta(hours=2))
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["template", "time_of_day"]
        constraints = [
            models.CheckConstraint(
                condition=Q(days_of_week__regex=r"^[0-6]{1,7}$"),
                name="checklist_schedule_days_valid",
                violation_error_message="Choose at least one day of the week.",
            ),
            models.CheckConstraint(
                condition=Q(due_within__gt=datetime.timedelta(0)),
                name="checklist_schedule_due_positive",
                violation_error_message="The run must be due some time after it starts.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.template.name} at {self.time_of_day:%H:%M} {self.days_label} ({self.timezone})"

    @property
    def days_label(self) -> str:
        days = sorted({int(d) for d in self.days_of_week})
        if days == [0, 1, 2, 3, 4]:
            return "weekdays"
        if days == list(range(7)):
            return "every day"
        return ", ".join(WEEKDAY_NAMES[d] for d in days)

    def slots_between(self, start: datetime.datetime, end: datetime.datetime) -> list[datetime.datetime]:
        """Slot instants (UTC-aware) with start < slot <= end, in this schedule's timezone."""
        tz = zoneinfo.ZoneInfo(self.timezone)
        days = {int(d) for d in self.days_of_week}
        slots = []
        day = start.astimezone(tz).date()
        last_day = end.astimezone(tz).date()
        while day <= last_day:
            if day.weekday() in days:
                slot = datetime.datetime.combine(day, self.time_of_day, tzinfo=tz).astimezone(datetime.UTC)
                if start < slot <= end:
                    slots.append(slot)
            day += datetime.timedelta(days=1)
        return slots


class RunStatus(models.TextChoices):
    OPEN = "open", "Open"
    COMPLETED = "completed", "Completed"
    MISSED = "missed", "Missed"


# What people type on a run item is limited here, once: the model, the forms,
# the service checks and their messages all read these.
NA_REASON_MAX_LENGTH = 300
NOTE_MAX_LENGTH = 5000
EVIDENCE_MAX_LENGTH = 2000


class ItemState(models.TextChoices):
    OPEN = "open", "Open"
    TICKED = "ticked", "Ticked"
    NA = "na", "N/A"


class ChecklistRun(models.Model):
    # Module-level so that Meta's constraints (and raw SQL) can name the values.
    Status = RunStatus

    template = models.ForeignKey(ChecklistTemplate, on_delete=models.PROTECT, related_name="runs")
    schedule = models.ForeignKey(Schedule, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    title = models.CharField(max_length=150, help_text="The template's name when the run was created.")
    offers_handoff = models.BooleanField(default=False)
    # The schedule slot this run is for; null for runs started by hand.
    slot = models.DateTimeField(null=True, blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    due_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    missed_at = models.DateTimeField(null=True, blank=True)
    signed_off_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    signed_off_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "due_at"]),
            models.Index(fields=["template", "created_at"]),
        ]
        constraints = [
            # Two beat processes (or a retried task) create a slot's run once: the
            # second INSERT conflicts and does nothing.
            models.UniqueConstraint(fields=["schedule", "slot"], name="checklist_run_unique_slot"),
            models.CheckConstraint(
                condition=Q(status__in=RunStatus.values),
                name="checklist_run_status_valid",
            ),
            models.CheckConstraint(
                condition=~Q(status=RunStatus.COMPLETED.value) | Q(signed_off_at__isnull=False),
                name="checklist_run_completed_is_signed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} · {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def is_writable(self) -> bool:
        return self.status != self.Status.COMPLETED

    @property
    def completed_late(self) -> bool:
        return bool(self.signed_off_at and self.signed_off_at > self.due_at)


class RunItem(models.Model):
    """One item of one run: a copy of the template item plus who did what."""

    State = ItemState

    run = models.ForeignKey(ChecklistRun, on_delete=models.CASCADE, related_name="items")
    template_item = models.ForeignKey(TemplateItem, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    order = models.PositiveIntegerField(default=0)
    section = models.CharField(max_length=150, blank=True)
    text = models.CharField(max_length=300)
    help = models.TextField(blank=True)
    required = models.BooleanField(default=True)
    runbook = models.ForeignKey("runbooks.Runbook", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    runbook_url = models.CharField(max_length=500, blank=True, validators=[validate_link_url])
    expected_evidence = models.CharField(max_length=300, blank=True)
    health_check = models.ForeignKey(
        "healthchecks.Check", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    ticked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ticked_at = models.DateTimeField(null=True, blank=True)
    # Ticked by the console itself (a passing health check), not by a person.
    automatic = models.BooleanField(default=False)
    na_reason = models.CharField(max_length=NA_REASON_MAX_LENGTH, blank=True)
    note = models.TextField(blank=True)
    evidence = models.TextField(blank=True, help_text="Text or a link showing the item was done.")
    note_updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note_updated_at = models.DateTimeField(null=True, blank=True)
    # Optimistic concurrency for note/evidence: a save names the version it edited.
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["run", "order", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(state__in=ItemState.values), name="checklist_item_state_valid"),
            models.CheckConstraint(
                condition=Q(state=ItemState.OPEN.value) | Q(ticked_at__isnull=False),
                name="checklist_item_done_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(state=ItemState.NA.value) | ~Q(na_reason=""), name="checklist_item_na_has_reason"
            ),
        ]

    def __str__(self) -> str:
        return self.text

    @property
    def is_done(self) -> bool:
        return self.state != self.State.OPEN
