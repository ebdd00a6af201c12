from django.db import models

from opsconsole.models import Service


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
    last_message = models.CharField(max_length=500, blank=True)
    last_latency_ms = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["service__name", "name"]
        constraints = [models.UniqueConstraint(fields=["service", "name"], name="check_unique_name_per_service")]

    def __str__(self) -> str:
        return f"{self.service.name} / {self.name}"

    @property
    def is_passing(self) -> bool:
        return self.state == self.State.OK
