"""Review models. Imported by incidents/models.py, so they belong to the
incidents app (app label "incidents") and its migrations.

The database enforces: one review per incident, one version number per
review, one selection row per (review, event), valid states, and that a
"won't do" action item states its reason.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class ReviewStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    APPROVED = "approved", "Approved"
    PUBLISHED = "published", "Published"


# (field, heading, required to submit). The seeds' template (001: "Post-Incident
# Review Template") has impact, timeline, root cause, action items and lessons
# learned; the rest are the usual blameless-review headings the issue asks for.
SECTIONS: list[tuple[str, str, bool]] = [
    ("summary", "Summary", True),
    ("customer_impact", "Customer impact", True),
    ("timeline_notes", "Timeline", False),
    ("root_cause", "Root cause", True),
    ("contributing_factors", "Contributing factors", False),
    ("went_well", "What went well", False),
    ("went_badly", "What went badly", False),
    ("got_lucky", "Where we got lucky", False),
    ("lessons_learned", "Lessons learned", True),
    ("action_items_notes", "Action items", False),
]
SECTION_FIELDS = [name for name, _, _ in SECTIONS]
SECTION_LABELS = {name: label for name, label, _ in SECTIONS}
REQUIRED_SECTIONS = [name for name, _, required in SECTIONS if required]


class Review(models.Model):
    incident = models.OneToOneField("incidents.Incident", on_delete=models.PROTECT, related_name="review")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=12, choices=ReviewStatus.choices, default=ReviewStatus.DRAFT, db_index=True)
    # Required reviews (SEV-1/2, created on resolve) block closing the incident until published.
    required = models.BooleanField(default=False)
    due_date = models.DateField(db_index=True)
    # Optimistic concurrency: every write is UPDATE … WHERE version = the version
    # the editor loaded, so two editors never silently overwrite each other.
    version = models.PositiveIntegerField(default=1)

    summary = models.TextField(blank=True)
    customer_impact = models.TextField(blank=True)
    timeline_notes = models.TextField(blank=True)
    root_cause = models.TextField(blank=True)
    contributing_factors = models.TextField(blank=True)
    went_well = models.TextField(blank=True)
    went_badly = models.TextField(blank=True)
    got_lucky = models.TextField(blank=True)
    lessons_learned = models.TextField(blank=True)
    action_items_notes = models.TextField(blank=True)

    # What the incident looked like when the review was created (id, SEV,
    # phase durations, impact, responders, alerts and checks): the review
    # states facts as they were, even if the incident is edited later.
    prefill = models.JSONField(default=dict, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["due_date", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=ReviewStatus.values), name="incidents_review_status_valid"),
        ]

    def __str__(self) -> str:
        return f"Review of {self.incident_id}"

    @property
    def is_overdue(self) -> bool:
        return self.status != ReviewStatus.PUBLISHED and self.due_date < timezone.localdate()

    @property
    def editable(self) -> bool:
        return self.status == ReviewStatus.DRAFT

    def sections(self) -> list[dict]:
        return [
            {"name": name, "label": label, "required": required, "text": getattr(self, name)}
            for name, label, required in SECTIONS
        ]


class ReviewVersion(models.Model):
    """Every saved state of a review's text (never updated)."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=12, choices=ReviewStatus.choices)
    reason = models.CharField(max_length=300, blank=True)
    sections = models.JSONField(default=dict)

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["review", "number"], name="incidents_review_version_unique")]

    def __str__(self) -> str:
        return f"{self.review} v{self.number}"


# Length limits in one place: forms, services, views and messages read these.
COMMENT_MAX_LENGTH = 10_000
SECTION_MAX_LENGTH = 50_000


class ReviewComment(models.Model):
    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="comments")
    section = models.CharField(max_length=30, choices=[(n, label) for n, label, _ in SECTIONS])
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    text = models.TextField()
    html = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"comment on {self.review} / {self.section}"


class ReviewEvent(models.Model):
    """A timeline event the review's timeline shows (starred events are
    selected when the review is created; the author adds or removes).
    The time shown is always the event's own `occurred_at`."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="selected_events")
    event = models.ForeignKey("incidents.TimelineEvent", on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["review", "event"], name="incidents_review_event_unique")]

    def __str__(self) -> str:
        return f"{self.review} ← event {self.event_id}"


class Priority(models.IntegerChoices):
    P1 = 1, "P1 (urgent)"
    P2 = 2, "P2 (high)"
    P3 = 3, "P3 (normal)"
    P4 = 4, "P4 (low)"


class ActionStatus(models.TextChoices):
    OPEN = "open", "Open"
    IN_PROGRESS = "in_progress", "In progress"
    DONE = "done", "Done"
    WONT_DO = "wont_do", "Won't do"


CLOSED_ACTION_STATUSES = (ActionStatus.DONE, ActionStatus.WONT_DO)


class ActionItem(models.Model):
    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="action_items")
    title = models.CharField(max_length=300)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    due_date = models.DateField(null=True, blank=True, db_index=True)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.P3)
    status = models.CharField(max_length=12, choices=ActionStatus.choices, default=ActionStatus.OPEN, db_index=True)
    wont_do_reason = models.CharField(max_length=500, blank=True)
    tracker_url = models.URLField(max_length=500, blank=True, help_text="Issue in an external tracker (http/https).")
    # "Update the runbook after each postmortem" (seeds 000): the runbook or
    # checklist template the item changes (string references: those apps sit
    # above incidents and are never imported), or any other page by URL.
    runbook = models.ForeignKey("runbooks.Runbook", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    checklist_template = models.ForeignKey(
        "checklists.ChecklistTemplate", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    change_url = models.CharField(
        max_length=500, blank=True, help_text="Another page this item changes (a console path or http/https URL)."
    )
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["priority", "due_date", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=ActionStatus.values), name="incidents_action_status_valid"),
            models.CheckConstraint(
                condition=~Q(status=ActionStatus.WONT_DO.value) | ~Q(wont_do_reason=""),
                name="incidents_action_wont_do_reason",
            ),
            models.CheckConstraint(condition=Q(priority__gte=1) & Q(priority__lte=4), name="incidents_action_priority"),
        ]
        indexes = [models.Index(fields=["owner", "status", "due_date"], name="incidents_action_owner_due")]

    def __str__(self) -> str:
        return self.title

    @property
    def is_closed(self) -> bool:
        return self.status in CLOSED_ACTION_STATUSES

    @property
    def is_overdue(self) -> bool:
        return not self.is_closed and self.due_date is not None and self.due_date < timezone.localdate()


class Recurrence(models.Model):
    """A new incident that matches an earlier one (same Alertmanager group or
    same check: the same dedup key). Flagged on both incidents' pages."""

    incident = models.OneToOneField("incidents.Incident", on_delete=models.CASCADE, related_name="recurrence")
    earlier = models.ForeignKey("incidents.Incident", on_delete=models.CASCADE, related_name="recurrences")
    earlier_review = models.ForeignKey(
        Review, on_delete=models.SET_NULL, null=True, blank=True, related_name="recurrences"
    )
    # True when every action item of the earlier review was closed when this
    # incident opened: "the fix did not hold".
    fix_did_not_hold = models.BooleanField(default=False)
    matched_on = models.CharField(max_length=30)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.incident_id} recurs {self.earlier_id}"
