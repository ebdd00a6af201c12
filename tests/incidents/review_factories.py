"""Test helpers for reviews: built through the real services."""

from datetime import timedelta

from django.contrib.auth.models import Group
from django.utils import timezone

from incidents import services
from incidents.models import Incident
from incidents.reviews import services as review_services
from incidents.reviews.models import ActionItem, Review, ReviewStatus
from opsconsole.models import User
from opsconsole.roles import Role

FILLED = {
    "summary": "The API ingress certificate expired.",
    "customer_impact": "API unavailable over HTTPS for 25 minutes.",
    "root_cause": "cert-manager's ACME challenge failed silently.",
    "lessons_learned": "Alert on certificate expiry 14 days ahead.",
}


def person(role: Role, username: str | None = None) -> User:
    n = User.objects.count() + 1
    # No password: hashing one costs a third of a second per user.
    user = User.objects.create(
        username=username or f"{role.value.replace(' ', '_').lower()}_r{n}", email=f"r{n}@example.com"
    )
    user.groups.add(Group.objects.get_or_create(name=role.value)[0])
    return user


def resolved_incident(*, severity: int = 2, commander=None, title: str = "TLS certificate expired", **kw) -> Incident:
    incident = services.incident_declare(actor=None, title=title, severity=severity, commander=commander, **kw)
    now = timezone.now()
    Incident.objects.filter(pk=incident.pk).update(
        status="resolved",
        acknowledged_at=now - timedelta(minutes=50),
        mitigated_at=now - timedelta(minutes=20),
        resolved_at=now,
        declared_at=now - timedelta(hours=1),
    )
    incident.refresh_from_db()
    return incident


def review_for(author=None, *, status: str = ReviewStatus.DRAFT, filled: bool = True, severity: int = 2) -> Review:
    """A review authored by `author` (a new SRE when None), moved to `status` directly."""
    author = author or person(Role.SRE)
    incident = resolved_incident(severity=severity, commander=author)
    review = review_services.review_create(incident=incident, required=severity <= 2)
    updates = {"status": status}
    if filled:
        updates.update(FILLED)
    Review.objects.filter(pk=review.pk).update(**updates)
    review.refresh_from_db()
    return review


def action_item(review: Review, **kw) -> ActionItem:
    defaults = {
        "title": "Alert 14 days before certificate expiry",
        "owner": review.author,
        "due_date": timezone.localdate() + timedelta(days=10),
    }
    return ActionItem.objects.create(review=review, **(defaults | kw))
