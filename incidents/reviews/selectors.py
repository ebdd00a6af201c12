"""Reads for reviews: querysets with what the pages need joined in, so every
page runs a constant number of queries whatever the data size. Restricted
incidents' reviews and action items only reach people who may see the incident."""

from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Count, Exists, F, OuterRef, Q, Window
from django.db.models.functions import RowNumber
from django.http import HttpRequest
from django.utils import timezone

from ..models import Incident, TimelineEvent
from ..selectors import visible_incidents
from ..services import render_markdown
from .models import (
    CLOSED_ACTION_STATUSES,
    SECTIONS,
    ActionItem,
    Recurrence,
    Review,
    ReviewComment,
    ReviewEvent,
    ReviewStatus,
    ReviewVersion,
)
from .services import refusal_for, submit_problems

MANAGER_LIST_LIMIT = 50


def visible_reviews(user):
    return Review.objects.filter(incident__in=visible_incidents(user))


def review_for(incident: Incident) -> Review | None:
    return Review.objects.select_related("author", "approved_by", "published_by").filter(incident=incident).first()


def selected_events(review: Review) -> list[TimelineEvent]:
    """The review's timeline, oldest first, at the incident's own times."""
    return list(
        TimelineEvent.objects.filter(Exists(ReviewEvent.objects.filter(review=review, event_id=OuterRef("pk"))))
        .select_related("author")
        .order_by("occurred_at", "id")[:500]
    )


def candidate_events(review: Review, limit: int = 200) -> list[TimelineEvent]:
    """Events the author may add (not yet selected), newest first."""
    return list(
        TimelineEvent.objects.filter(incident_id=review.incident_id)
        .exclude(Exists(ReviewEvent.objects.filter(review=review, event_id=OuterRef("pk"))))
        .exclude(kind="review")
        .select_related("author")
        .order_by("-occurred_at", "-id")[:limit]
    )


def action_items(review: Review) -> list[ActionItem]:
    return list(ActionItem.objects.filter(review=review).select_related("owner", "checklist_template", "runbook"))


def review_page_context(review: Review, user) -> dict:
    comments = defaultdict(list)
    for comment in ReviewComment.objects.filter(review=review).select_related("author"):
        comments[comment.section].append(comment)
    sections = review.sections()
    for section in sections:
        section["comments"] = comments.get(section["name"], [])
        section["html"] = render_markdown(section["text"])
    recurrences = list(
        Recurrence.objects.filter(Q(earlier_review=review) | Q(earlier_id=review.incident_id))
        .filter(incident__in=visible_incidents(user))
        .select_related("incident")
        .order_by("-created_at")[:20]
    )
    return {
        "review": review,
        "sections": sections,
        "events": selected_events(review),
        "items": action_items(review),
        "versions": list(ReviewVersion.objects.filter(review=review).select_related("author")[:20]),
        "recurrences": recurrences,
        "problems": submit_problems(review) if review.status == ReviewStatus.DRAFT else [],
    }


def incident_review_context(incident: Incident, user) -> dict:
    """What the incident page shows about its review and recurrences: one
    query (the review comes joined with the incident from get_incident)."""
    review = getattr(incident, "review", None)
    links = list(
        Recurrence.objects.filter(Q(incident=incident) | Q(earlier=incident, incident__in=visible_incidents(user)))
        .select_related("incident", "earlier", "earlier_review")
        .order_by("-created_at")[:11]
    )
    recurrence = next((r for r in links if r.incident_id == incident.pk), None)
    later = [r for r in links if r.earlier_id == incident.pk]
    refusal = refusal_for(incident, review)
    return {"review": review, "recurrence": recurrence, "later_recurrences": later, "close_refusal": refusal}


# --- manager view ------------------------------------------------------------------


@dataclass
class OwnerItems:
    owner: object
    items: list
    count: int = 0


_USER = ("username", "first_name", "last_name")
REVIEW_LIST_FIELDS = (
    "id",
    "status",
    "due_date",
    "submitted_at",
    "author_id",
    *[f"author__{f}" for f in _USER],
    "incident__reference",
    "incident__title",
    "incident__severity__name",
    "incident__severity__level",
)
ITEM_LIST_FIELDS = (
    "id",
    "title",
    "due_date",
    "priority",
    "status",
    "owner_id",
    *[f"owner__{f}" for f in _USER],
    "review_id",
    "review__incident_id",
    "review__incident__reference",
)
ITEMS_PER_OWNER = 10


def manager_lists(user, *, service: str = "") -> dict:
    """Awaiting review, overdue reviews, overdue action items per owner (with
    each owner's total). Six queries, whatever the history's size; only the
    columns the page shows are loaded."""
    today = timezone.localdate()
    reviews = visible_reviews(user).select_related("incident__severity", "author").only(*REVIEW_LIST_FIELDS)
    items = ActionItem.objects.filter(review__incident__in=visible_incidents(user))
    if service:
        in_service = Incident.services.through.objects.filter(service__slug=service)
        reviews = reviews.filter(Exists(in_service.filter(incident_id=OuterRef("incident_id"))))
        items = items.filter(Exists(in_service.filter(incident_id=OuterRef("review__incident_id"))))
    overdue_q = ~Q(status=ReviewStatus.PUBLISHED) & Q(due_date__lt=today)
    awaiting = list(reviews.filter(status=ReviewStatus.IN_REVIEW).order_by("submitted_at")[:MANAGER_LIST_LIMIT])
    overdue = list(reviews.filter(overdue_q).order_by("due_date")[:MANAGER_LIST_LIMIT])
    late_items = items.exclude(status__in=CLOSED_ACTION_STATUSES).filter(due_date__lt=today)
    per_owner_counts = dict(late_items.values_list("owner_id").annotate(n=Count("id")).values_list("owner_id", "n"))
    # The oldest few per owner (a window function keeps it one query).
    ranked = late_items.annotate(
        rank=Window(RowNumber(), partition_by=[F("owner_id")], order_by=[F("due_date").asc(), F("id").asc()])
    )
    shown = list(
        ranked.filter(rank__lte=ITEMS_PER_OWNER)
        .select_related("owner", "review__incident")
        .only(*ITEM_LIST_FIELDS)
        .order_by("owner__username", "due_date")
    )
    per_owner: dict = {}
    for item in shown:
        group = per_owner.setdefault(item.owner_id, OwnerItems(item.owner, [], per_owner_counts.get(item.owner_id, 0)))
        group.items.append(item)
    counts = reviews.aggregate(
        drafts=Count("id", filter=Q(status=ReviewStatus.DRAFT)),
        awaiting=Count("id", filter=Q(status=ReviewStatus.IN_REVIEW)),
        overdue=Count("id", filter=overdue_q),
    )
    counts["overdue_items"] = sum(per_owner_counts.values())
    return {
        "awaiting": awaiting,
        "overdue_reviews": overdue,
        "overdue_by_owner": sorted(per_owner.values(), key=lambda o: str(o.owner or "")),
        "counts": counts,
    }


# --- dashboard -----------------------------------------------------------------------


def dashboard_panel_context(request: HttpRequest) -> dict:
    """My reviews to write (drafts I author) and my overdue action items."""
    user = request.user
    today = timezone.localdate()
    mine = list(
        visible_reviews(user)
        .filter(author=user, status=ReviewStatus.DRAFT)
        .select_related("incident__severity")
        .order_by("due_date")[:10]
    )
    overdue = list(
        ActionItem.objects.filter(review__incident__in=visible_incidents(user), owner=user, due_date__lt=today)
        .exclude(status__in=CLOSED_ACTION_STATUSES)
        .select_related("review__incident")
        .order_by("due_date")[:10]
    )
    return {"my_reviews": mine, "my_overdue_items": overdue, "today": today}


def section_choices() -> list[tuple[str, str]]:
    return [(name, label) for name, label, _ in SECTIONS]
