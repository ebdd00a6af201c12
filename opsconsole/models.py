import hashlib
import secrets
import zoneinfo

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models
from django.utils import timezone

from .validators import validate_link_url

TIMEZONE_CHOICES = sorted((tz, tz) for tz in zoneinfo.available_timezones())


class User(AbstractUser):
    """A console user; roles are Django groups (see opsconsole.roles)."""

    timezone = models.CharField(
        max_length=64,
        choices=TIMEZONE_CHOICES,
        default="UTC",
        help_text="Times are shown to you in this timezone.",
    )

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"

    def __str__(self) -> str:
        return self.get_full_name() or self.username


class Service(models.Model):
    """A component of the monitored stack. Incidents, checks and runbooks point here."""

    class Tier(models.IntegerChoices):
        CRITICAL = 1, "Tier 1 — customer-facing, critical"
        IMPORTANT = 2, "Tier 2 — important"
        SUPPORTING = 3, "Tier 3 — supporting"

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    owner_team = models.CharField(max_length=100, blank=True)
    tier = models.PositiveSmallIntegerField(choices=Tier.choices, default=Tier.IMPORTANT)
    webhook_url = models.URLField(
        max_length=500,
        blank=True,
        help_text="Slack-compatible incoming webhook for this service's notifications. "
        "Blank: the global NOTIFY_WEBHOOK_URL.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tier", "name"]

    def __str__(self) -> str:
        return self.name


class ServiceLink(models.Model):
    """A link shown on a service: dashboard, repository, runbook wiki, status page."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="links")
    title = models.CharField(max_length=100)
    url = models.URLField(max_length=500, validators=[validate_link_url])

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return f"{self.service}: {self.title}"


class AuditEntry(models.Model):
    """One state-changing action. Rows are hash-chained; see opsconsole.audit.

    The log is several chains ("streams", AUDIT_STREAMS of them) so that
    concurrent writers do not queue behind one lock: `position` is the row's
    place in its stream's chain (a gap means a deleted row), `seq` is only
    the global order of insertion (a rolled-back append leaves a gap there).
    The actor is kept as plain values, not a foreign key, so that deleting a
    user never rewrites (and so never breaks) the chain.
    """

    seq = models.BigAutoField(primary_key=True)
    stream = models.PositiveSmallIntegerField(default=1)
    position = models.BigIntegerField()
    created_at = models.DateTimeField()
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_label = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=100, db_index=True)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=100, blank=True)
    target_repr = models.CharField(max_length=300, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-seq"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["target_type", "target_id"])]
        constraints = [models.UniqueConstraint(fields=["stream", "position"], name="auditentry_stream_position")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} by {self.actor_label or 'system'}"


class AuditHead(models.Model):
    """One audit stream's last position, kept outside the table it protects.

    One row per stream (`id` is the stream number), moved forward in the
    same transaction as every append to that stream (see
    opsconsole.audit.record). Rows deleted from the end of a stream leave its
    head pointing past the last row, which `verify_audit` reports; a
    database trigger (migrations 0004, 0008) refuses to delete a head or move
    it back. The heads are also exported on /metrics and logged daily, so a
    copy lives outside the database too.
    """

    id = models.PositiveSmallIntegerField(primary_key=True)
    position = models.BigIntegerField()
    hash = models.CharField(max_length=64)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id__gte=1), name="audithead_stream_positive")]

    def __str__(self) -> str:
        return f"audit stream {self.id} head #{self.position}"


def _hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def active(self) -> "ApiTokenQuerySet":
        return self.filter(revoked_at__isnull=True)


class ApiToken(models.Model):
    """A per-user bearer token for scripts and chat bots.

    Only the SHA-256 of the token is stored; the token itself is shown once,
    when it is created (opsconsole.services.api_token_create).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What uses it, e.g. 'chatops bot'.")
    prefix = models.CharField(max_length=12, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def generate() -> tuple[str, str, str]:
        """Return (raw token, prefix, hash)."""
        raw = "opc_" + secrets.token_urlsafe(32)
        return raw, raw[:8], _hash_token(raw)

    @classmethod
    def find_active(cls, raw: str) -> "ApiToken | None":
        """The unrevoked token of an active user, loaded with the user and their roles."""
        from .auth_backends import active_api_token

        return active_api_token(_hash_token(raw))

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def mark_used(self) -> None:
        now = timezone.now()
        # One write a minute at most: a busy bot must not turn every call into an UPDATE.
        if self.last_used_at is None or (now - self.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=self.pk).update(last_used_at=now)
            self.last_used_at = now


class Session(AbstractBaseSession):
    """Django's database session, with the signed-in user's id in a column of
    its own (filled from the session's data when it is saved): a request
    reads its session and its user with roles in one statement
    (opsconsole/sessions.py). The id is only a hint for that join: Django
    still takes the user from the signed session data and checks its
    password hash, and a session whose column names someone else (or no
    one) reads its user as before."""

    user_id = models.BigIntegerField(null=True, blank=True)

    class Meta(AbstractBaseSession.Meta):
        db_table = "opsconsole_session"

    @classmethod
    def get_session_store_class(cls):
        from .sessions import SessionStore

        return SessionStore
