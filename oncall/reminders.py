"""Reminders before a shift starts (ONCALL_REMINDER_OFFSETS, e.g. 1 day and 1 hour).

Exactly once: each reminder is a SentReminder row (unique per person,
rotation, shift start and offset) inserted in the same transaction as the
notification's deliveries. Two sweeps at once, a retried task, or a
re-materialised schedule (new Shift rows, same start) cannot send it twice.
When several offsets are due at once (a shift planned 30 minutes ahead),
only the shortest is sent; the longer ones are recorded as skipped.
"""

import datetime
import zoneinfo

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from notifications import services as notifications

from .models import SentReminder, Shift


def _label(minutes: int) -> str:
    if minutes % (24 * 60) == 0:
        days = minutes // (24 * 60)
        return f"{days} day{'s' if days > 1 else ''}"
    if minutes % 60 == 0:
        return f"{minutes // 60} h"
    return f"{minutes} min"


def send_due_reminders(now: datetime.datetime | None = None) -> int:
    """Send every reminder that is due now and was not sent. Returns how many were sent."""
    now = now or timezone.now()
    offsets = settings.ONCALL_REMINDER_MINUTES  # longest first
    if not offsets:
        return 0
    longest = datetime.timedelta(minutes=offsets[0])
    shifts = (
        Shift.objects.filter(starts_at__gt=now, starts_at__lte=now + longest, user__is_active=True)
        .select_related("user", "rotation")
        .order_by("starts_at")
    )
    done = set(
        SentReminder.objects.filter(shift_starts_at__gt=now, shift_starts_at__lte=now + longest).values_list(
            "user_id", "rotation_id", "shift_starts_at", "offset_minutes"
        )
    )
    sent = 0
    for shift in shifts:
        due = [m for m in offsets if shift.starts_at - datetime.timedelta(minutes=m) <= now]
        pending = [m for m in due if (shift.user_id, shift.rotation_id, shift.starts_at, m) not in done]
        if not pending:
            continue
        shortest = min(due)
        if shortest not in pending:
            continue  # the shortest one went out already; longer ones are moot
        sent += _send_one(shift, shortest, skipped=[m for m in pending if m != shortest])
    return sent


def _send_one(shift: Shift, minutes: int, skipped: list[int]) -> int:
    user = shift.user
    try:
        with transaction.atomic():
            SentReminder.objects.create(
                user=user, rotation=shift.rotation, shift_starts_at=shift.starts_at, offset_minutes=minutes
            )
            for other in skipped:
                SentReminder.objects.get_or_create(
                    user=user,
                    rotation=shift.rotation,
                    shift_starts_at=shift.starts_at,
                    offset_minutes=other,
                    defaults={"skipped": True},
                )
            tz = zoneinfo.ZoneInfo(user.timezone or "UTC")
            starts = timezone.localtime(shift.starts_at, timezone=tz).strftime("%a %d %b %H:%M")
            ends = timezone.localtime(shift.ends_at, timezone=tz).strftime("%a %d %b %H:%M")
            if user.email:
                notifications.notify(
                    event="oncall.shift_reminder",
                    title=f"On call for {shift.rotation.name} in {_label(minutes)}",
                    text=f"Your shift starts {starts} and ends {ends} ({user.timezone}).",
                    url=reverse("oncall:index"),
                    emails=[user.email],
                    webhook=False,
                )
    except IntegrityError:
        return 0  # another sweep sent it first
    return 1
