"""The outbound notification queue: one row per target, sent by Celery."""

from django.db import models

from opsconsole.redaction import display_url


class Delivery(models.Model):
    """One outbound notification to one target (a webhook URL or an email address).

    Created by notifications.services.notify in the caller's transaction and
    sent by the Celery task notifications.tasks.send_delivery after commit. A
    delivery that keeps failing ends `dead` and waits in the dead-letter list
    for a human to replay it.
    """

    class Channel(models.TextChoices):
        WEBHOOK = "webhook", "Webhook"
        EMAIL = "email", "Email"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed (will retry)"
        DEAD = "dead", "Dead letter"

    channel = models.CharField(max_length=10, choices=Channel.choices)
    target = models.CharField(max_length=500, help_text="Webhook URL or email address.")
    event = models.CharField(max_length=100, db_index=True, help_text="What happened, e.g. incident.declared.")
    service = models.ForeignKey(
        "opsconsole.Service", on_delete=models.SET_NULL, null=True, blank=True, related_name="deliveries"
    )
    payload = models.JSONField(help_text="Webhook: the JSON body sent. Email: subject and body.")
    # What the notification is about ("incidents.incident", pk): the dead-letter
    # list shows the payload only to people who may see that subject, asked
    # through the hook its app registers (notifications.visibility).
    subject_type = models.CharField(max_length=100, blank=True)
    subject_id = models.CharField(max_length=100, blank=True)
    restricted = models.BooleanField(default=False, help_text="About a restricted subject (a restricted incident).")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A lease, not a status: the worker that sets it (conditional UPDATE) is
    # the only one that may send until it expires, and a worker that died
    # mid-send frees the delivery once the lease runs out.
    locked_until = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "deliveries"
        indexes = [models.Index(fields=["status", "-created_at"], name="delivery_status_created")]

    def __str__(self) -> str:
        return f"{self.event} → {self.target_display} ({self.status})"

    @property
    def target_display(self) -> str:
        """The target as pages, the audit log and the admin show it. A webhook
        URL is a credential (anyone holding a Slack webhook URL can post), so
        only its scheme, host and first path segment are shown."""
        if self.channel != self.Channel.WEBHOOK:
            return self.target
        return display_url(self.target)
