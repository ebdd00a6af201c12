"""Permission-matrix cases for every review URL that changes state."""

from incidents.models import TimelineEvent
from incidents.reviews.models import Review, ReviewStatus
from opsconsole.roles import Role
from tests.incidents.review_factories import FILLED, action_item, person, resolved_incident, review_for
from tests.permissions import Case


def _ref(review) -> dict:
    return {"reference": review.incident.reference}


def _own_draft(user):
    return _ref(review_for(user))


def _others_in_review(user):
    """Submitted by someone else, so that a Manager may approve it."""
    return _ref(review_for(person(Role.SRE), status=ReviewStatus.IN_REVIEW))


def _others_approved(user):
    return _ref(review_for(person(Role.SRE), status=ReviewStatus.APPROVED))


def _published(user):
    return _ref(review_for(person(Role.SRE), status=ReviewStatus.PUBLISHED))


def _no_review(user):
    return {"reference": resolved_incident(severity=3).reference}


def _with_item(user):
    review = review_for(user)
    item = action_item(review)
    return {"reference": review.incident.reference, "pk": item.pk}


def _first_event(kw) -> int:
    return TimelineEvent.objects.filter(incident__reference=kw["reference"]).order_by("id").first().pk


def _author(kw) -> int:
    return Review.objects.get(incident__reference=kw["reference"]).author_id


_SECTIONS = {**FILLED, "version": 1}

CASES = [
    Case("incidents:review_create", "review.write", setup=_no_review),
    Case("incidents:review_save", "review.write", setup=_own_draft, data=lambda kw: _SECTIONS),
    Case(
        "incidents:review_preview",
        "review.write",
        setup=_own_draft,
        data=lambda kw: {"section": "summary", "summary": "**bold**"},
    ),
    Case("incidents:review_submit", "review.write", setup=_own_draft, data=lambda kw: {"version": 1}),
    Case(
        "incidents:review_request_changes",
        "review.approve",
        setup=_others_in_review,
        data=lambda kw: {"section": "root_cause", "reason": "Go one level deeper."},
    ),
    Case("incidents:review_approve", "review.approve", setup=_others_in_review),
    Case("incidents:review_publish", "review.approve", setup=_others_approved),
    Case(
        "incidents:review_correct",
        "review.approve",
        setup=_published,
        data=lambda kw: {**_SECTIONS, "reason": "Typo in the root cause"},
    ),
    Case(
        "incidents:review_reassign",
        "review.approve",
        setup=_own_draft,
        data=lambda kw: {"author": _author(kw), "due_date": "2030-01-07"},
    ),
    Case(
        "incidents:review_comment",
        "review.write",
        setup=_own_draft,
        data=lambda kw: {"section": "summary", "text": "Which customers?"},
    ),
    Case(
        "incidents:review_select_event",
        "review.write",
        setup=_own_draft,
        data=lambda kw: {"event": _first_event(kw), "selected": ""},
    ),
    Case(
        "incidents:review_action_add",
        "review.write",
        setup=_own_draft,
        data=lambda kw: {"title": "Renew certificates automatically", "priority": 2, "status": "open"},
    ),
    Case(
        "incidents:review_action_update",
        "review.write",
        setup=_with_item,
        data=lambda kw: {"title": "Alert on expiry", "priority": 2, "status": "in_progress", "version": 1},
    ),
]
