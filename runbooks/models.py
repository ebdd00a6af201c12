"""Runbooks, their versions and steps, and the executions that follow them.

A runbook is edited by writing a new version (its steps belong to the
version); an execution pins the version it ran, so later edits never change
what a past execution shows. Rows that record what people and workers did
(step runs, action runs) carry who and when, and the database enforces the
valid states.
"""

import uuid

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import Q

from opsconsole.models import Service


class Runbook(models.Model):
    """What a person (or a worker) does about one symptom.

    `title`, `symptoms` and `search_text` copy the current version, so that the
    list and full-text search read one table; `search_vector` is kept by
    runbooks.services (PostgreSQL only; SQLite searches with icontains).
    """

    title = models.CharField(max_length=200, unique=True)
    symptoms = models.TextField(blank=True, help_text="When to use it: what you see (Markdown).")
    services = models.ManyToManyField(Service, blank=True, related_name="runbooks")
    tags = models.JSONField(default=list, blank=True)
    current_version = models.ForeignKey(
        "RunbookVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Where an import found it ("001_ops.txt#scenario-1-high-queue-backlog"): a
    # re-import updates this runbook instead of creating another.
    source = models.CharField(max_length=300, blank=True, db_index=True)
    search_text = models.TextField(blank=True, editable=False)
    search_vector = SearchVectorField(null=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]
        indexes = [GinIndex(fields=["search_vector"], name="runbook_search_gin")]

    def __str__(self) -> str:
        return self.title


class RunbookVersion(models.Model):
    """One saved state of a runbook; never edited after it is written."""

    runbook = models.ForeignKey(Runbook, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    symptoms = models.TextField(blank=True)
    change_note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["runbook", "-number"]
        constraints = [models.UniqueConstraint(fields=["runbook", "number"], name="runbook_version_unique_number")]

    def __str__(self) -> str:
        return f"{self.title} v{self.number}"


class RunbookStep(models.Model):
    version = models.ForeignKey(RunbookVersion, on_delete=models.CASCADE, related_name="steps")
    order = models.PositiveIntegerField()
    title = models.CharField(max_length=300)
    instructions = models.TextField(blank=True, help_text="Markdown.")
    command = models.TextField(blank=True, help_text="Shown in a block with a copy button.")
    # A key of runbooks.actions.REGISTRY; blank: a step a person does.
    action = models.CharField(max_length=50, blank=True)
    action_params = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["version", "order"]
        constraints = [models.UniqueConstraint(fields=["version", "order"], name="runbook_step_unique_order")]

    def __str__(self) -> str:
        return f"{self.order}. {self.title}"

    @property
    def action_label(self) -> str:
        from .actions import REGISTRY

        action = REGISTRY.get(self.action)
        return action.label if action else self.action


# The status sets are module-level so that Meta's constraints can name their values.
class ExecutionStatus(models.TextChoices):
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    ABORTED = "aborted", "Aborted"


class StepState(models.TextChoices):
    PENDING = "pending", "To do"
    DONE = "done", "Done"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"


class ActionRunStatus(models.TextChoices):
    AWAITING_APPROVAL = "awaiting", "Awaiting approval"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    REJECTED = "rejected", "Rejected"
    INTERRUPTED = "interrupted", "Interrupted (outcome unknown)"


class Execution(models.Model):
    """One person (or the console) following one pinned runbook version."""

    Status = ExecutionStatus

    runbook = models.ForeignKey(Runbook, on_delete=models.PROTECT, related_name="executions")
    version = models.ForeignKey(RunbookVersion, on_delete=models.PROTECT, related_name="executions")
    incident = models.ForeignKey(
        "incidents.Incident", null=True, blank=True, on_delete=models.SET_NULL, related_name="runbook_executions"
    )
    check_ref = models.ForeignKey(
        "healthchecks.Check", null=True, blank=True, on_delete=models.SET_NULL, related_name="runbook_executions"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField()
    status_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status_changed_at = models.DateTimeField(null=True, blank=True)
    pause_reason = models.CharField(max_length=300, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    verification = models.CharField(max_length=20, blank=True, help_text="fix verified / fix did not hold")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ExecutionStatus.values),
                name="runbook_execution_status_valid",
            )
        ]

    def __str__(self) -> str:
        return f"{self.version} · {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.RUNNING


class StepRun(models.Model):
    """One step of one execution: what was done, by whom, when."""

    State = StepState

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="step_runs")
    step = models.ForeignKey(RunbookStep, on_delete=models.PROTECT, related_name="+")
    order = models.PositiveIntegerField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    note = models.CharField(max_length=1000, blank=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["execution", "order"]
        constraints = [
            models.UniqueConstraint(fields=["execution", "order"], name="runbook_steprun_unique_order"),
            models.CheckConstraint(condition=Q(state__in=StepState.values), name="runbook_steprun_state_valid"),
            models.CheckConstraint(
                condition=Q(state=StepState.PENDING.value) | Q(at__isnull=False), name="runbook_steprun_has_time"
            ),
            models.CheckConstraint(
                condition=~Q(state__in=[StepState.SKIPPED.value, StepState.FAILED.value]) | ~Q(note=""),
                name="runbook_steprun_reason_given",
            ),
        ]

    def __str__(self) -> str:
        return f"step {self.order} ({self.state})"


class ActionRun(models.Model):
    """One request to carry out an action: approval, the worker's progress and output.

    `idempotency_key` is unique per request: the worker claims the row by a
    conditional UPDATE, so a redelivered task never applies the action twice.
    """

    Status = ActionRunStatus

    step_run = models.ForeignKey(StepRun, null=True, blank=True, on_delete=models.CASCADE, related_name="action_runs")
    # Auto-remediation runs have a check and no step.
    check_ref = models.ForeignKey(
        "healthchecks.Check", null=True, blank=True, on_delete=models.SET_NULL, related_name="remediation_runs"
    )
    incident = models.ForeignKey(
        "incidents.Incident", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Auto-remediation: the state change that triggered the run. Unique, so a
    # redelivered trigger task never starts a second run for one change.
    trigger = models.OneToOneField(
        "healthchecks.CheckStateChange", null=True, blank=True, on_delete=models.SET_NULL, related_name="remediation"
    )
    # Did the fix hold: the check probed again `verify_settle_seconds` after
    # success (the step's execution's check by default, or one the person picked).
    verify_check = models.ForeignKey(
        "healthchecks.Check", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    verify_settle_seconds = models.PositiveIntegerField(null=True, blank=True)
    verification = models.CharField(max_length=20, blank=True, help_text="fix verified / fix did not hold")
    action = models.CharField(max_length=50)
    params = models.JSONField(default=dict)
    destructive = models.BooleanField(default=False)
    dry_run = models.TextField(blank=True, help_text="What would change, computed when requested.")
    status = models.CharField(max_length=12, choices=Status.choices)
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_at = models.DateTimeField()
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    override_reason = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    progress = models.PositiveSmallIntegerField(default=0)
    output = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ActionRunStatus.values),
                name="runbook_actionrun_status_valid",
            ),
            # Four eyes: nobody approves their own request, except a SEV-1
            # commander's override, which must give its reason.
            models.CheckConstraint(
                condition=Q(approved_by__isnull=True)
                | Q(requested_by__isnull=True)
                | ~Q(approved_by=models.F("requested_by"))
                | ~Q(override_reason=""),
                name="runbook_actionrun_four_eyes",
            ),
            models.CheckConstraint(condition=Q(progress__lte=100), name="runbook_actionrun_progress_le_100"),
        ]

    def __str__(self) -> str:
        return f"{self.action} ({self.get_status_display()})"

    @property
    def is_finished(self) -> bool:
        return self.status in {"succeeded", "failed", "rejected", "interrupted"}


class RemediationBinding(models.Model):
    """Auto-remediation: an action the console runs by itself when a check turns critical.

    Non-destructive actions may be bound by anyone who edits checks; a
    destructive one only with a Manager's pre-approval (who and when are kept,
    and the database refuses a destructive binding without them). `cooldown_seconds`
    and `max_per_hour` bound how often it runs; the row is locked while a run is
    decided, so two workers never both pass the limits.
    """

    check_ref = models.OneToOneField(
        "healthchecks.Check", on_delete=models.CASCADE, related_name="remediation_binding", db_column="check_id"
    )
    action = models.CharField(max_length=50)
    params = models.JSONField(default=dict, blank=True)
    destructive = models.BooleanField(default=False)
    enabled = models.BooleanField(default=True)
    cooldown_seconds = models.PositiveIntegerField(default=900)
    max_per_hour = models.PositiveSmallIntegerField(default=2)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)
    # The latest trigger that was not acted on, and why (cooldown, hourly limit).
    last_skipped_at = models.DateTimeField(null=True, blank=True)
    last_skip_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(destructive=False) | Q(approved_by__isnull=False, approved_at__isnull=False),
                name="runbook_binding_destructive_preapproved",
            ),
            models.CheckConstraint(condition=Q(max_per_hour__gte=1), name="runbook_binding_max_per_hour_min_1"),
        ]

    def __str__(self) -> str:
        return f"{self.check_ref_id}: {self.action}"

    @property
    def action_label(self) -> str:
        from .actions import REGISTRY

        action = REGISTRY.get(self.action)
        return action.label if action else self.action
