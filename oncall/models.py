from django.conf import settings
from django.db import models

from opsconsole.models import TIMEZONE_CHOICES, Service


class Rotation(models.Model):
    """A group of people who take turns being on call for some services.

    No services means the rotation covers every service (a primary SRE
    rotation); a rotation with services covers only those (a database rotation).
    """

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    services = models.ManyToManyField(
        Service,
        blank=True,
        related_name="rotations",
        help_text="Services this rotation is paged for. None selected: all services.",
    )
    timezone = models.CharField(
        max_length=64,
        choices=TIMEZONE_CHOICES,
        default="UTC",
        help_text="The timezone the rotation's shifts are planned in (times are stored in UTC).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Shift(models.Model):
    """One person on call for one rotation from starts_at (inclusive) to ends_at (exclusive).

    Shifts of one rotation never overlap: oncall.services.shift_create refuses
    it under a row lock on the rotation.
    """

    rotation = models.ForeignKey(Rotation, on_delete=models.CASCADE, related_name="shifts")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="shifts")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
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
