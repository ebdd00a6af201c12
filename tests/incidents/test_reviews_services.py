"""Review services: workflow, permissions per transition, versions,
optimistic concurrency, validation and audit."""

from datetime import date, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from incidents.models import EventKind, EventStar, TimelineEvent
from incidents.reviews import services
from incidents.reviews.models import ActionItem, ActionStatus, Review, ReviewStatus, ReviewVersion
from opsconsole.models import AuditEntry
from opsconsole.roles import Role
from tests.incidents.review_factories import FILLED, action_item, person, resolved_incident, review_for

pytestmark = pytest.mark.django_db

IN_REVIEW, APPROVED, PUBLISHED, DRAFT = (
    ReviewStatus.IN_REVIEW,
    ReviewStatus.APPROVED,
    ReviewStatus.PUBLISHED,
    ReviewStatus.DRAFT,
)


def _actors(review):
    """The four people of the proof: the author, another SRE, a Manager, a Viewer."""
    return {
        "author": review.author,
        "other_sre": person(Role.SRE),
        "manager": person(Role.MANAGER),
        "viewer": person(Role.VIEWER),
    }


def _submit(review, actor):
    return services.review_submit(review=review, actor=actor)


def _request_changes(review, actor):
    return services.review_request_changes(review=review, actor=actor, reason="Deeper root cause, please.")


def _approve(review, actor):
    return services.review_approve(review=review, actor=actor)


def _publish(review, actor):
    return services.review_publish(review=review, actor=actor)


def _edit(review, actor):
    return services.review_save(review=review, actor=actor, version=review.version, sections={"summary": "New"})


def _correct(review, actor):
    return services.review_correct(
        review=review, actor=actor, version=review.version, sections={"root_cause": "Fixed"}, reason="typo"
    )


# transition, the status it starts from, the status it ends in, who may do it.
TRANSITIONS = [
    ("edit", _edit, DRAFT, DRAFT, {"author", "other_sre", "manager"}),
    ("submit", _submit, DRAFT, IN_REVIEW, {"author", "manager"}),
    ("request_changes", _request_changes, IN_REVIEW, DRAFT, {"manager"}),
    ("approve", _approve, IN_REVIEW, APPROVED, {"manager"}),
    ("publish", _publish, APPROVED, PUBLISHED, {"manager"}),
    ("correct", _correct, PUBLISHED, PUBLISHED, {"manager"}),
]


@pytest.mark.parametrize("who", ["author", "other_sre", "manager", "viewer"])
@pytest.mark.parametrize("name,action,start,end,allowed", TRANSITIONS, ids=[t[0] for t in TRANSITIONS])
def test_transition_permissions(who, name, action, start, end, allowed):
    review = review_for(status=start)
    actor = _actors(review)[who]
    audits = AuditEntry.objects.count()
    if who in allowed:
        result = action(review, actor)
        assert result.status == end
        assert Review.objects.get(pk=review.pk).status == end
        assert AuditEntry.objects.filter(action__startswith="review.").count() > 0
        assert AuditEntry.objects.count() > audits
    else:
        with pytest.raises(PermissionDenied):
            action(review, actor)
        assert Review.objects.get(pk=review.pk).status == start
        assert AuditEntry.objects.count() == audits


def test_author_who_is_a_manager_cannot_approve_their_own_review():
    manager = person(Role.MANAGER)
    review = review_for(manager, status=IN_REVIEW)
    with pytest.raises(PermissionDenied, match="another Manager"):
        services.review_approve(review=review, actor=manager)
    assert Review.objects.get(pk=review.pk).status == IN_REVIEW


def test_transitions_are_on_the_incident_timeline_and_audited():
    review = review_for()
    manager = person(Role.MANAGER)
    services.review_submit(review=review, actor=review.author)
    services.review_approve(review=review, actor=manager)
    services.review_publish(review=review, actor=manager)
    texts = list(
        TimelineEvent.objects.filter(incident=review.incident, kind=EventKind.REVIEW).values_list("text", flat=True)
    )
    assert any("submitted" in t for t in texts)
    assert any("approved" in t for t in texts)
    assert any("published" in t for t in texts)
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"review.create", "review.submit", "review.approve", "review.publish"} <= actions


def test_wrong_state_is_refused_without_change():
    review = review_for(status=DRAFT)
    manager = person(Role.MANAGER)
    with pytest.raises(services.ReviewRefused):
        services.review_approve(review=review, actor=manager)
    with pytest.raises(services.ReviewRefused):
        services.review_publish(review=review, actor=manager)
    assert Review.objects.get(pk=review.pk).status == DRAFT


def test_submit_names_empty_required_sections_and_incomplete_action_items():
    review = review_for(filled=False)
    Review.objects.filter(pk=review.pk).update(summary="", customer_impact="", root_cause="", lessons_learned="")
    action_item(review, title="Rotate the certificate", owner=None, due_date=None)
    review.refresh_from_db()
    with pytest.raises(ValidationError) as caught:
        services.review_submit(review=review, actor=review.author)
    messages = " ".join(caught.value.messages)
    for label in ("Summary", "Customer impact", "Root cause", "Lessons learned"):
        assert f"“{label}” is empty" in messages
    assert "“Rotate the certificate” needs an owner and a due date" in messages
    assert Review.objects.get(pk=review.pk).status == DRAFT


def test_every_edit_keeps_a_version_and_a_stale_editor_is_refused():
    review = review_for()
    other = person(Role.SRE)
    first = services.review_save(review=review, actor=review.author, version=1, sections={"summary": "Alice's"})
    assert first.version == 2
    with pytest.raises(services.ReviewConflict, match="Someone saved"):
        services.review_save(review=review, actor=other, version=1, sections={"summary": "Bob's"})
    assert Review.objects.get(pk=review.pk).summary == "Alice's"
    numbers = list(ReviewVersion.objects.filter(review=review).values_list("number", flat=True))
    assert sorted(numbers) == [1, 2]
    assert ReviewVersion.objects.get(review=review, number=2).sections["summary"] == "Alice's"


def test_published_review_is_read_only_and_a_correction_is_a_new_audited_version():
    review = review_for(status=PUBLISHED)
    with pytest.raises(services.ReviewRefused, match="published"):
        services.review_save(review=review, actor=review.author, version=review.version, sections={"summary": "x"})
    with pytest.raises(services.ReviewRefused):
        services.comment_add(review=review, actor=review.author, section="summary", text="late")
    manager = person(Role.MANAGER)
    with pytest.raises(ValidationError):
        services.review_correct(review=review, actor=manager, version=review.version, sections={}, reason="")
    corrected = services.review_correct(
        review=review, actor=manager, version=review.version, sections={"root_cause": "Corrected"}, reason="wrong host"
    )
    assert corrected.status == PUBLISHED and corrected.root_cause == "Corrected"
    assert ReviewVersion.objects.filter(review=review, reason__contains="wrong host").exists()
    assert AuditEntry.objects.filter(action="review.correct").exists()


def test_create_prefills_from_the_incident_and_selects_starred_events():
    commander = person(Role.INCIDENT_COMMANDER)
    incident = resolved_incident(commander=commander, customer_impact="Checkout down for 20% of users")
    starred = TimelineEvent.objects.filter(incident=incident).first()
    EventStar.objects.create(event=starred, starred_by=commander)
    review = services.review_create(incident=incident, required=True)
    assert review.author == commander
    assert review.customer_impact == "Checkout down for 20% of users"
    assert review.prefill["reference"] == incident.reference
    assert review.prefill["severity"] == "SEV-2"
    assert review.prefill["phases"]["to_acknowledge"] == "10m"
    assert review.prefill["phases"]["total"] == "1h 00m"
    assert list(review.selected_events.values_list("event_id", flat=True)) == [starred.pk]
    # idempotent
    assert services.review_create(incident=incident) == review
    assert Review.objects.filter(incident=incident).count() == 1


def test_due_date_counts_business_days(settings):
    assert services.add_business_days(date(2026, 11, 27), 5) == date(2026, 12, 4)  # Friday → next Friday
    assert services.add_business_days(date(2026, 11, 28), 1) == date(2026, 11, 30)  # Saturday → Monday


def test_author_can_add_and_remove_timeline_events_only_in_draft():
    review = review_for()
    event = TimelineEvent.objects.filter(incident=review.incident).exclude(kind=EventKind.REVIEW).first()
    services.review_select_event(review=review, actor=review.author, event_id=event.pk, selected=False)
    assert not review.selected_events.filter(event=event).exists()
    services.review_select_event(review=review, actor=review.author, event_id=event.pk, selected=True)
    assert review.selected_events.filter(event=event).exists()
    other = review_for()
    foreign = TimelineEvent.objects.filter(incident=other.incident).first()
    with pytest.raises(ValidationError):
        services.review_select_event(review=review, actor=review.author, event_id=foreign.pk, selected=True)


@pytest.mark.parametrize("url", ["javascript:alert(1)", "ftp://x/y", "data:text/html,hi", "http://", "//evil.com/x"])
def test_tracker_url_must_be_http(url):
    review = review_for()
    with pytest.raises(ValidationError):
        services.action_item_add(review=review, actor=review.author, title="Fix", tracker_url=url)
    assert not ActionItem.objects.filter(review=review).exists()


def test_action_item_wont_do_needs_a_reason_and_updates_are_optimistic():
    review = review_for()
    item = services.action_item_add(
        review=review,
        actor=review.author,
        title="Alert on expiry",
        owner=review.author,
        due_date=date.today() + timedelta(days=3),
        tracker_url="https://tracker.example.com/OPS-1",
    )
    with pytest.raises(ValidationError, match="why"):
        services.action_item_update(item=item, actor=review.author, version=1, title=item.title, status="wont_do")
    done = services.action_item_update(item=item, actor=review.author, version=1, title=item.title, status="done")
    assert done.status == ActionStatus.DONE and done.closed_at is not None
    with pytest.raises(services.ReviewConflict):
        services.action_item_update(item=item, actor=review.author, version=1, title=item.title, status="open")


def test_viewer_cannot_own_an_action_item():
    review = review_for()
    with pytest.raises(ValidationError, match="read-only"):
        services.action_item_add(review=review, actor=review.author, title="x", owner=person(Role.VIEWER))


def test_close_refusal_until_published():
    review = review_for(status=APPROVED)
    assert "cannot be closed" in services.close_refusal(review.incident)
    Review.objects.filter(pk=review.pk).update(status=PUBLISHED)
    assert services.close_refusal(review.incident) == ""
    optional = review_for(severity=3)
    Review.objects.filter(pk=optional.pk).update(required=False)
    assert services.close_refusal(optional.incident) == ""


def test_submit_then_request_changes_leaves_the_reason_as_a_comment():
    review = review_for()
    action_item(review)
    services.review_submit(review=review, actor=review.author)
    manager = person(Role.MANAGER)
    services.review_request_changes(review=review, actor=manager, reason="Which customers?", section="customer_impact")
    review.refresh_from_db()
    assert review.status == DRAFT
    assert review.comments.get().section == "customer_impact"
    assert FILLED["summary"] == review.summary
