import uuid

from django.db import models
from django.db.models import Q

from opsconsole.models import Service

# How many recent latencies a check keeps for the board's sparkline: the
# board then draws every trend from the check row itself (no extra query).
RECENT_LATENCIES = 20


class Check(models.Model):
    """A probe of one target. Its latest state is stored here so that the
    status board (and checklist items bound to a check) read one row."""

    class Kind(models.TextChoices):
        HTTP = "http", "HTTP(S)"
        TCP = "tcp", "TCP connect"
        DNS = "dns", "DNS resolution"
        TLS = "tls", "TLS certificate"
        POSTGRES = "postgres", "PostgreSQL"
        REDIS = "redis", "Redis"
        PROMETHEUS = "prometheus", "Prometheus query"
        KUBERNETES = "kubernetes", "Kubernetes deployment"
        HEARTBEAT = "heartbeat", "Heartbeat (dead man's switch)"

    class State(models.TextChoices):
        OK = "ok", "OK"
        WARNING = "warning", "Warning"
        CRITICAL = "critical", "Critical"
        UNKNOWN = "unknown", "Unknown"

    name = models.CharField(max_length=150)
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="checks")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    config = models.JSONField(default=dict, blank=True, help_text="Type-specific settings (URL, query, thresholds).")
    interval_seconds = models.PositiveIntegerField(default=60)
    timeout_seconds = models.FloatField(default=10.0)
    enabled = models.BooleanField(default=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.UNKNOWN)
    state_changed_at = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    # The detailed message (may quote a short excerpt of what the probe
    # fetched) is for roles with config.edit; the summary, for everyone.
    last_message = models.CharField(max_length=500, blank=True)
    last_summary = models.CharField(max_length=200, blank=True)
    last_latency_ms = models.FloatField(null=True, blank=True)

    # Thresholds: what they measure depends on the kind (latency ms for HTTP,
    # days left for TLS, the query's value for PostgreSQL/Prometheus, ...).
    warning_threshold = models.FloatField(null=True, blank=True)
    critical_threshold = models.FloatField(null=True, blank=True)
    # Flap suppression: the state changes only after this many consecutive
    # results agree on the new state.
    consecutive_needed = models.PositiveSmallIntegerField(default=2)
    pending_state = models.CharField(max_length=10, blank=True)
    pending_count = models.PositiveSmallIntegerField(default=0)
    # Scheduling. A check is due when next_due_at has passed and no lease is
    # held; the dispatcher takes a lease, the result writer clears it and
    # moves next_due_at on. A worker that dies lets the lease expire.
    next_due_at = models.DateTimeField(null=True, blank=True)
    # When the leased run was due (set by the claim, which moves next_due_at
    # to the lease's end): the result schedules the next run one interval
    # after it, so a check keeps its pace instead of drifting by its lateness.
    scheduled_at = models.DateTimeField(null=True, blank=True, editable=False)
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_token = models.UUIDField(null=True, blank=True)
    queue = models.CharField(
        max_length=100,
        blank=True,
        help_text="Celery queue that runs this check (empty: the default queue).",
    )
    opens_incident = models.BooleanField(default=False, help_text="A state change opens or updates an incident.")
    # Heartbeat checks: the job pings /health/ping/<token>.
    heartbeat_token = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    last_ping_at = models.DateTimeField(null=True, blank=True)
    last_ping_failed = models.BooleanField(default=False)
    # Figures of the latest result for /metrics (http status, cert expiry).
    last_details = models.JSONField(default=dict, blank=True)
    recent_latencies = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, null=True)

    class Meta:
        ordering = ["service__name", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "name"],
                name="check_unique_name_per_service",
                violation_error_message="This service already has a check with that name.",
            ),
            models.CheckConstraint(
                condition=Q(consecutive_needed__gte=1),
                name="check_consecutive_needed_min_1",
                violation_error_message="At least one consecutive result is needed to change state.",
            ),
            models.CheckConstraint(
                condition=Q(timeout_seconds__gt=0),
                name="check_timeout_positive",
                violation_error_message="The timeout must be more than 0 seconds.",
            ),
            models.CheckConstraint(
                condition=Q(interval_seconds__gte=5),
                name="check_interval_min_5s",
                violation_error_message="A check runs at most every 5 seconds.",
            ),
        ]
        indexes = [
            models.Index(fields=["enabled", "next_due_at"], name="check_due_idx"),
            # The live leases, counted before every dispatch (at most
            # HEALTHCHECK_DISPATCH_LIMIT at once): written checks have none,
            # so the index holds only what is in flight.
            models.Index(fields=["lease_until"], name="check_lease_idx", condition=Q(lease_until__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.service.name} / {self.name}"

    @property
    def is_passing(self) -> bool:
        return self.state == self.State.OK


class CheckResult(models.Model):
    """One raw probe result; kept HEALTHCHECK_RAW_RETENTION_DAYS, then only rollups remain."""

    # No index of its own: result_check_time_idx leads with check_id and
    # serves every lookup by check (a check's results, cascade deletes); a
    # second index only cost each of the 1,667 inserts a second a page to write.
    check_ref = models.ForeignKey(
        Check, on_delete=models.CASCADE, related_name="results", db_column="check_id", db_index=False
    )
    checked_at = models.DateTimeField()
    state = models.CharField(max_length=10, choices=Check.State.choices)
    latency_ms = models.FloatField(null=True, blank=True)
    message = models.CharField(max_length=500, blank=True)
    summary = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-checked_at"]
        indexes = [
            models.Index(fields=["check_ref", "-checked_at"], name="result_check_time_idx"),
            models.Index(fields=["checked_at"], name="result_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.check_ref_id} {self.checked_at:%Y-%m-%d %H:%M:%S} {self.state}"


class CheckRollup(models.Model):
    """One hour of a check's results: kept long after the raw rows are pruned."""

    check_ref = models.ForeignKey(Check, on_delete=models.CASCADE, related_name="rollups", db_column="check_id")
    hour = models.DateTimeField()
    count = models.PositiveIntegerField()
    ok_count = models.PositiveIntegerField()
    latency_min_ms = models.FloatField(null=True)
    latency_avg_ms = models.FloatField(null=True)
    latency_max_ms = models.FloatField(null=True)

    class Meta:
        ordering = ["-hour"]
        constraints = [models.UniqueConstraint(fields=["check_ref", "hour"], name="rollup_unique_check_hour")]

    def __str__(self) -> str:
        return f"{self.check_ref_id} {self.hour:%Y-%m-%d %H}:00 {self.ok_count}/{self.count}"

    @property
    def success_ratio(self) -> float:
        return self.ok_count / self.count if self.count else 0.0


class CheckStateChange(models.Model):
    """Append-only history of state changes."""

    check_ref = models.ForeignKey(Check, on_delete=models.CASCADE, related_name="state_changes", db_column="check_id")
    changed_at = models.DateTimeField()
    from_state = models.CharField(max_length=10, choices=Check.State.choices)
    to_state = models.CharField(max_length=10, choices=Check.State.choices)
    message = models.CharField(max_length=500, blank=True)
    summary = models.CharField(max_length=200, blank=True)
    # A maintenance window covered the change: no incident was opened.
    silenced = models.BooleanField(default=False)

    class Meta:
        ordering = ["-changed_at", "-id"]
        indexes = [models.Index(fields=["check_ref", "-changed_at"], name="statechange_check_time_idx")]

    def __str__(self) -> str:
        return f"{self.check_ref_id}: {self.from_state} → {self.to_state}"


class MaintenanceWindow(models.Model):
    """While active, state changes of the check (or every check of the
    service) are recorded but trigger no action."""

    service = models.ForeignKey(
        Service, on_delete=models.CASCADE, null=True, blank=True, related_name="maintenance_windows"
    )
    check_ref = models.ForeignKey(
        Check,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="maintenance_windows",
        db_column="check_id",
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=300)
    created_by = models.ForeignKey("opsconsole.User", on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")),
                name="maintenance_ends_after_start",
                violation_error_message="The window must end after it starts.",
            ),
            models.CheckConstraint(
                condition=Q(service__isnull=False) | Q(check_ref__isnull=False),
                name="maintenance_has_target",
                violation_error_message="Choose a service or a check.",
            ),
        ]

    def __str__(self) -> str:
        target = self.check_ref or self.service
        return f"{target}: {self.starts_at:%Y-%m-%d %H:%M} – {self.ends_at:%Y-%m-%d %H:%M}"

    @property
    def is_active(self) -> bool:
        from django.utils import timezone

        return self.starts_at <= timezone.now() < self.ends_at
