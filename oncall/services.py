"""Writes of the on-call app's schedule: rotations, members, overrides and the
materialised shifts. Each public function owns its transaction and audit entry.

Concurrency: every write to one rotation's schedule first locks the rotation
row (select_for_update). The overlap check of overrides and the
delete-and-insert of the materialised shifts are therefore serial per
rotation; on PostgreSQL exclusion constraints (btree_gist) on both tables
refuse an overlap even from a path that forgot the lock.
"""

import datetime
import zoneinfo
from collections.abc import Sequence

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from notifications import services as notifications
from opsconsole import audit
from opsconsole.models import User
from opsconsole.roles import check_capability

from . import schedule
from .models import CalendarFeed, Override, Rotation, RotationMember, Shift, ShiftLength

ROTATION_FIELDS = ("name", "timezone", "shift_length", "custom_hours", "handoff_time", "start_date")
OVERRIDE_FIELDS = ("rotation_id", "user_id", "starts_at", "ends_at", "kind", "reason")


def _when(value: datetime.datetime, tz_name: str) -> str:
    return timezone.localtime(value, timezone=zoneinfo.ZoneInfo(tz_name)).strftime("%a %d %b %H:%M")


def horizon(now: datetime.datetime) -> datetime.datetime:
    return now + datetime.timedelta(days=settings.ONCALL_SCHEDULE_DAYS)


# --- materialising the schedule -------------------------------------------------


def _compute(rotation: Rotation, window_start: datetime.datetime, window_end: datetime.datetime):
    member_ids = list(rotation.members.order_by("position").values_list("user_id", flat=True))
    overrides = [
        schedule.Segment(o.user_id, o.starts_at, o.ends_at, Shift.Source.OVERRIDE)
        for o in rotation.overrides.filter(ends_at__gt=window_start, starts_at__lt=window_end)
    ]
    return schedule.final_segments(
        member_ids=member_ids,
        start_date=rotation.start_date,
        handoff_time=rotation.handoff_time,
        hours=rotation.hours,
        tz_name=rotation.timezone,
        overrides=overrides,
        window_start=window_start,
        window_end=window_end,
    )


def rotation_materialise(
    *, rotation: Rotation, now: datetime.datetime | None = None, notify_changes: bool = True
) -> dict[str, int]:
    """Rewrite the rotation's shifts from now to the horizon from its computed schedule.

    Past shifts (ended before now) stay as history; the current and future
    ones are replaced. People whose shifts changed inside the previously
    materialised window are told so (notifications, once per change) — a
    horizon that merely moves on by a day tells nobody. Idempotent: running
    it twice with the same inputs writes the same rows and notifies nobody
    the second time. Runs in the caller's transaction if there is one.
    """
    now = now or timezone.now()
    until = horizon(now)
    with transaction.atomic():
        rotation = Rotation.objects.select_for_update().get(pk=rotation.pk)
        old_until = rotation.materialised_until
        last_past_end = (
            Shift.objects.filter(rotation=rotation, ends_at__lte=now)
            .order_by("-ends_at")
            .values_list("ends_at", flat=True)
            .first()
        )
        segments = _compute(rotation, now, until)
        new_rows = []
        for seg in segments:
            start = seg.starts_at
            if last_past_end is not None and start < last_past_end:
                start = last_past_end  # never overlap the history that stays
            end = min(seg.ends_at, until)
            if end > start:
                new_rows.append(
                    Shift(rotation=rotation, user_id=seg.user_id, starts_at=start, ends_at=end, source=seg.source)
                )
        old = list(
            Shift.objects.filter(rotation=rotation, ends_at__gt=now).values_list("user_id", "starts_at", "ends_at")
        )
        Shift.objects.filter(rotation=rotation, ends_at__gt=now).delete()
        Shift.objects.bulk_create(new_rows)
        Rotation.objects.filter(pk=rotation.pk).update(materialised_until=until)
        changed: set[int] = set()
        if old_until is not None and notify_changes:
            changed = _changed_users(old, new_rows, old_until)
            if changed:
                _notify_schedule_change(rotation, changed)
    return {"shifts": len(new_rows), "changed_users": len(changed)}


def _changed_users(old: list, new_rows: list[Shift], old_until: datetime.datetime) -> set[int]:
    """Users whose shifts inside the old window differ (added, removed or moved)."""
    before: dict[int, set] = {}
    after: dict[int, set] = {}
    for user_id, start, end in old:
        before.setdefault(user_id, set()).add((start, min(end, old_until)))
    for row in new_rows:
        if row.starts_at < old_until:
            after.setdefault(row.user_id, set()).add((row.starts_at, min(row.ends_at, old_until)))
    return {uid for uid in before.keys() | after.keys() if before.get(uid, set()) != after.get(uid, set())}


def _notify_schedule_change(rotation: Rotation, user_ids: set[int]) -> None:
    """Through the notifications app, as every other notice: each person by
    e-mail with their own upcoming shifts, and the rotation's channel (its
    services' webhooks, else the global one) with who changed — names only.
    The channel is shared, so shift times and override reasons (a holiday, a
    sick day: personal) stay in each person's own e-mail; the console's
    schedule pages show the rest to those who may read them."""
    users = list(User.objects.filter(pk__in=user_ids, is_active=True).order_by("username"))
    upcoming: dict[int, list[Shift]] = {}
    for shift in (
        Shift.objects.filter(rotation=rotation, user_id__in=user_ids)
        .filter(ends_at__gt=timezone.now())
        .order_by("starts_at")
    ):
        upcoming.setdefault(shift.user_id, []).append(shift)
    title = f"Your on-call shifts in {rotation.name} changed"
    url = reverse("oncall:calendar")
    notices = []
    for user in users:
        if not user.email:
            continue
        lines = [
            f"- {_when(s.starts_at, user.timezone)} → {_when(s.ends_at, user.timezone)}"
            for s in upcoming.get(user.pk, [])[:10]
        ]
        text = "Your shifts now are (your timezone):\n" + ("\n".join(lines) or "- none")
        notices.append(
            {"event": "oncall.schedule_changed", "title": title, "text": text, "url": url, "emails": [user.email]}
        )
    if users:
        names = ", ".join(str(u) for u in users)
        for service in _channel_services(rotation):
            notices.append(
                {
                    "event": "oncall.schedule_changed",
                    "title": f"On-call schedule of {rotation.name} changed",
                    "text": f"Shifts changed for {names}. See the on-call calendar.",
                    "url": url,
                    "service": service,
                    "webhook": True,
                }
            )
    for notice in notices:
        notice.setdefault("webhook", False)
        notice["subject"] = rotation
    notifications.notify_many(notices)


def _channel_services(rotation: Rotation) -> list:
    """One service per distinct webhook among the rotation's services (None: the
    global webhook, for a rotation of every service or services without one)."""
    chosen, seen = [], set()
    for service in rotation.services.order_by("tier", "name"):
        target = notifications.webhook_target(service)
        if target and target not in seen:
            seen.add(target)
            chosen.append(service)
    return chosen or [None]


def materialise_all(now: datetime.datetime | None = None) -> int:
    """Beat: extend every rotation's materialised window (daily). Idempotent."""
    count = 0
    for rotation in Rotation.objects.all():
        rotation_materialise(rotation=rotation, now=now)
        count += 1
    return count


# --- rotations -------------------------------------------------------------------------


def _validate_rotation(data: dict) -> None:
    errors = {}
    if data.get("timezone") not in zoneinfo.available_timezones():
        errors["timezone"] = "Unknown timezone."
    if data.get("shift_length") not in ShiftLength.values:
        errors["shift_length"] = f"Choose one of {', '.join(ShiftLength.values)}."
    hours = data.get("custom_hours")
    if not isinstance(hours, int) or not 1 <= hours <= 24 * 28:
        errors["custom_hours"] = "A custom shift lasts from 1 to 672 hours."
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def rotation_update(*, actor: User | None, rotation: Rotation, member_ids: Sequence[int], **fields) -> Rotation:
    """Change a rotation's settings and its ordered members, then recompute its
    shifts. Validates everything before writing anything."""
    if actor is not None:
        check_capability(actor, "schedule.edit")
    data = {name: getattr(rotation, name) for name in ROTATION_FIELDS} | fields
    _validate_rotation(data)
    if len(set(member_ids)) != len(member_ids):
        raise ValidationError({"members": "Each person can be in a rotation once."})
    found = set(User.objects.filter(pk__in=member_ids, is_active=True).values_list("pk", flat=True))
    if missing := [pk for pk in member_ids if pk not in found]:
        raise ValidationError({"members": f"Unknown or inactive users: {missing}."})
    rotation = Rotation.objects.select_for_update().get(pk=rotation.pk)
    before = audit.snapshot(rotation, ROTATION_FIELDS) | {"members": _member_ids(rotation)}
    for name, value in fields.items():
        setattr(rotation, name, value)
    rotation.save(update_fields=[*fields.keys()] if fields else None)
    RotationMember.objects.filter(rotation=rotation).delete()
    RotationMember.objects.bulk_create(
        RotationMember(rotation=rotation, user_id=pk, position=i) for i, pk in enumerate(member_ids)
    )
    after = audit.snapshot(rotation, ROTATION_FIELDS) | {"members": list(member_ids)}
    audit.record(actor, "oncall.rotation_update", rotation, before=before, after=after)
    rotation_materialise(rotation=rotation)
    return rotation


def _member_ids(rotation: Rotation) -> list[int]:
    return list(rotation.members.order_by("position").values_list("user_id", flat=True))


# --- overrides ---------------------------------------------------------------------------


@transaction.atomic
def override_create(
    *,
    actor: User | None,
    rotation: Rotation,
    user: User,
    starts_at: datetime.datetime,
    ends_at: datetime.datetime,
    kind: str = Override.Kind.SWAP,
    reason: str = "",
) -> Override:
    """Put `user` on call for `rotation` from starts_at to ends_at instead of the schedule.

    The one place that decides whether an override may exist (the page, the
    admin and the demo data all call it). Refuses (ValidationError, nothing
    written) an end not after the start, an unknown kind, or a range
    overlapping another override of the rotation. Race-safe: the rotation row
    is locked while checking and inserting.
    """
    if actor is not None:
        check_capability(actor, "schedule.edit")
    if ends_at <= starts_at:
        raise ValidationError({"ends_at": "The override must end after it starts."})
    if kind not in Override.Kind.values:
        raise ValidationError({"kind": f"Choose one of {', '.join(Override.Kind.values)}."})
    if not user.is_active:
        raise ValidationError({"user": "That user is inactive."})
    # Serialises schedule writes per rotation: the overlap check below is only
    # true until commit if nobody else can insert in between.
    rotation = Rotation.objects.select_for_update().get(pk=rotation.pk)
    clash = (
        Override.objects.filter(rotation=rotation, starts_at__lt=ends_at, ends_at__gt=starts_at)
        .select_related("user")
        .order_by("starts_at")
        .first()
    )
    if clash is not None:
        tz = rotation.timezone
        start, end = _when(clash.starts_at, tz), _when(clash.ends_at, tz)
        raise ValidationError(
            f"This overlaps {clash.user}'s override ({start} – {end}, {tz}) "
            f"in {rotation.name}. Overrides of one rotation cannot overlap: remove that one first."
        )
    override = Override.objects.create(
        rotation=rotation,
        user=user,
        starts_at=starts_at,
        ends_at=ends_at,
        kind=kind,
        reason=(reason or "")[:200],
        created_by=actor,
    )
    audit.record(actor, "oncall.override_create", override, after=audit.snapshot(override, OVERRIDE_FIELDS))
    rotation_materialise(rotation=rotation)
    return override


@transaction.atomic
def override_delete(*, actor: User, override: Override) -> None:
    """Remove an override; the schedule takes over again. Idempotent."""
    check_capability(actor, "schedule.edit")
    Rotation.objects.select_for_update().filter(pk=override.rotation_id).first()
    locked = Override.objects.filter(pk=override.pk).first()
    if locked is None:
        return
    audit.record(actor, "oncall.override_delete", locked, before=audit.snapshot(locked, OVERRIDE_FIELDS))
    locked.delete()
    rotation_materialise(rotation=override.rotation)


# --- calendar feeds -------------------------------------------------------------------------


@transaction.atomic
def feed_create(*, actor: User) -> str:
    """A new private feed URL token for `actor`; any earlier feed stops working.
    Returns the raw token (shown once; only its hash is stored)."""
    now = timezone.now()
    revoked = CalendarFeed.objects.filter(user=actor, revoked_at__isnull=True).update(revoked_at=now)
    raw, token_hash = CalendarFeed.generate()
    feed = CalendarFeed.objects.create(user=actor, token_hash=token_hash)
    audit.record(actor, "oncall.feed_create", feed, after={"revoked_previous": revoked})
    return raw


FEED_TOUCH_SECONDS = 60


def feed_touch(feed: CalendarFeed, now: datetime.datetime) -> bool:
    """Record that a calendar app fetched the feed, at most once a minute: no
    statement at all when the time read with the feed is recent (calendar apps
    poll often), and a conditional UPDATE otherwise, so two fetches at once
    write once. Bookkeeping like an API token's last use, not audited."""
    stale = now - datetime.timedelta(seconds=FEED_TOUCH_SECONDS)
    if feed.last_used_at is not None and feed.last_used_at > stale:
        return False
    fresh = Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale)
    written = CalendarFeed.objects.filter(fresh, pk=feed.pk).update(last_used_at=now)
    feed.last_used_at = now
    return bool(written)


@transaction.atomic
def feed_revoke(*, actor: User) -> int:
    """Revoke the actor's feed: its URL answers 404 from now on. Idempotent."""
    revoked = CalendarFeed.objects.filter(user=actor, revoked_at__isnull=True).update(revoked_at=timezone.now())
    if revoked:
        audit.record(actor, "oncall.feed_revoke", actor, after={"revoked": revoked})
    return revoked
