"""Writes for action items of post-incident reviews: owner, due date,
priority, status (open, in progress, done, won't do with a reason), an
external tracker link (http/https only), the runbook or checklist template it
changes. Updates are optimistic: `UPDATE … WHERE version = <the version the
form showed>`, so a stale form is refused (ReviewConflict) instead of
overwriting someone's change.
"""

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from opsconsole import audit
from opsconsole.roles import check_capability, has_capability

from .models import ActionItem, ActionStatus, Priority, Review, ReviewStatus
from .services import ReviewConflict, ReviewRefused


def clean_tracker_url(url: str) -> str:
    """External tracker links: http(s) with a host, nothing else (no javascript:, no data:)."""
    url = (url or "").strip()
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c in url for c in ' \n\r\t<>"'):
        raise ValidationError("The tracker link must be an http:// or https:// URL.")
    return url[:500]


def clean_change_url(url: str) -> str:
    """What the item changes: a console path ("/runbooks/…") or an http(s) URL."""
    url = (url or "").strip()
    if not url:
        return ""
    if url.startswith("/") and not url.startswith("//") and not any(c in url for c in ' \n\r\t<>"\\'):
        return url[:500]
    try:
        return clean_tracker_url(url)
    except ValidationError:
        raise ValidationError("The runbook/page link must be a console path (/runbooks/…) or an http(s) URL.") from None


def _item_fields(data: dict) -> dict:
    title = (data.get("title") or "").strip()
    if not title:
        raise ValidationError("Give the action item a title.")
    status = data.get("status") or ActionStatus.OPEN
    if status not in ActionStatus.values:
        raise ValidationError("Unknown status.")
    reason = (data.get("wont_do_reason") or "").strip()
    if status == ActionStatus.WONT_DO and not reason:
        raise ValidationError("Say why the item won't be done.")
    owner = data.get("owner")
    if owner is not None and not has_capability(owner, "review.write"):
        raise ValidationError(f"{owner} has a read-only role and cannot own an action item.")
    priority = int(data.get("priority") or Priority.P3)
    if priority not in Priority.values:
        raise ValidationError("Priority is P1 to P4.")
    return {
        "title": title[:300],
        "owner": owner,
        "due_date": data.get("due_date"),
        "priority": priority,
        "status": status,
        "wont_do_reason": reason[:500] if status == ActionStatus.WONT_DO else "",
        "tracker_url": clean_tracker_url(data.get("tracker_url", "")),
        "runbook": data.get("runbook"),
        "checklist_template": data.get("checklist_template"),
        "change_url": clean_change_url(data.get("change_url", "")),
    }


def _item_snapshot(item: ActionItem) -> dict:
    return audit.snapshot(
        item,
        ("title", "owner_id", "due_date", "priority", "status", "wont_do_reason", "tracker_url", "change_url"),
    )


def action_item_add(*, review: Review, actor, **data) -> ActionItem:
    """Add an action item; not on a published review (its list is final)."""
    check_capability(actor, "review.write")
    fields = _item_fields(data)
    if review.status == ReviewStatus.PUBLISHED:
        raise ReviewRefused("The review is published: its action items are fixed (update their status instead).")
    with transaction.atomic():
        now = timezone.now()
        closed = now if fields["status"] in (ActionStatus.DONE, ActionStatus.WONT_DO) else None
        item = ActionItem.objects.create(review=review, created_at=now, updated_at=now, closed_at=closed, **fields)
        audit.record(actor, "review.action_add", item, after=_item_snapshot(item))
    return item


def action_item_update(*, item: ActionItem, actor, version: int, **data) -> ActionItem:
    """Change an action item (its status, owner, dates…), optimistic on `version`.
    On a published review only the status, reason and tracker link move."""
    check_capability(actor, "review.write")
    fields = _item_fields(data)
    review = item.review
    if review.status == ReviewStatus.PUBLISHED:
        fields = {k: fields[k] for k in ("status", "wont_do_reason", "tracker_url")}
    now = timezone.now()
    closing = fields["status"] in (ActionStatus.DONE, ActionStatus.WONT_DO)
    with transaction.atomic():
        before = _item_snapshot(item)
        changed = ActionItem.objects.filter(pk=item.pk, version=version).update(
            **fields,
            version=F("version") + 1,
            updated_at=now,
            closed_at=(item.closed_at or now) if closing else None,
        )
        if not changed:
            raise ReviewConflict(f"Someone changed “{item.title}” after you opened it: reload and try again.")
        current = ActionItem.objects.select_related("owner", "review__incident").get(pk=item.pk)
        audit.record(actor, "review.action_update", current, before=before, after=_item_snapshot(current))
    return current
