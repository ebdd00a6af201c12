"""Recurrence: a new incident that matches an earlier one.

Two incidents match when they share a dedup key: the same Alertmanager
alert group (the key is a hash of the group key, i.e. of the group labels) or
the same health check (`check:<id>`, hence the same service and check).
The new incident links to the earlier incident and its review; both pages
show the flag. When the earlier review's action items were all closed, the
note says "the fix did not hold".
"""

from django.db import IntegrityError, transaction

from opsconsole import audit

from ..models import EventKind, Incident
from ..services import timeline_add_event
from .models import CLOSED_ACTION_STATUSES, ActionItem, Recurrence, Review


def _matched_on(dedup_key: str) -> str:
    if dedup_key.startswith("check:"):
        return "check"
    if dedup_key.startswith("alertmanager:"):
        return "alert group"
    return "source"


def detect_recurrence(incident: Incident) -> Recurrence | None:
    """Link `incident` to the latest earlier incident with the same dedup key.
    Idempotent (one recurrence row per incident). Runs in the caller's transaction."""
    if not incident.dedup_key:
        return None
    earlier = (
        Incident.objects.filter(dedup_key=incident.dedup_key, declared_at__lte=incident.declared_at)
        .exclude(pk=incident.pk)
        .order_by("-declared_at", "-id")
        .first()
    )
    if earlier is None:
        return None
    review = Review.objects.filter(incident=earlier).first()
    fix_did_not_hold = False
    if review is not None:
        statuses = list(ActionItem.objects.filter(review=review).values_list("status", flat=True))
        fix_did_not_hold = bool(statuses) and all(s in CLOSED_ACTION_STATUSES for s in statuses)
    matched_on = _matched_on(incident.dedup_key)
    try:
        with transaction.atomic():
            recurrence = Recurrence.objects.create(
                incident=incident,
                earlier=earlier,
                earlier_review=review,
                fix_did_not_hold=fix_did_not_hold,
                matched_on=matched_on,
            )
    except IntegrityError:
        return Recurrence.objects.get(incident=incident)
    note = " Every action item of its review was closed: **the fix did not hold**." if fix_did_not_hold else ""
    timeline_add_event(
        incident=incident,
        kind=EventKind.REVIEW,
        author_label="console",
        text=f"Recurrence of {earlier.reference} (same {matched_on}).{note}",
        data={"recurrence_of": earlier.reference, "fix_did_not_hold": fix_did_not_hold},
    )
    # A restricted incident does not reveal itself on a less restricted one's timeline.
    hidden = incident.restricted and not earlier.restricted
    later_ref = "" if hidden else incident.reference
    later_name = "a restricted incident" if hidden else incident.reference
    timeline_add_event(
        incident=earlier,
        kind=EventKind.REVIEW,
        author_label="console",
        text=f"Recurred as {later_name} (same {matched_on}).{note}",
        data={"recurred_as": later_ref, "fix_did_not_hold": fix_did_not_hold},
    )
    audit.record(
        None,
        "review.recurrence",
        incident,
        after={"earlier": earlier.reference, "matched_on": matched_on, "fix_did_not_hold": fix_did_not_hold},
    )
    return recurrence
