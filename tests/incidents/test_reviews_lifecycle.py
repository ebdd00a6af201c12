"""Reviews hooked into the incident lifecycle: resolving a SEV-1/2 creates a
required review (author notified), closing waits for it to be published, and
a new incident with an earlier one's dedup key is flagged as a recurrence."""

import pytest

from incidents import services
from incidents.models import EventKind, Incident, Status, TimelineEvent
from incidents.reviews.models import ActionItem, ActionStatus, Recurrence, Review, ReviewStatus
from notifications.models import Delivery
from opsconsole.roles import Role
from tests.incidents.review_factories import person

pytestmark = pytest.mark.django_db


def _resolve(incident, actor):
    for to in (Status.ACKNOWLEDGED, Status.RESOLVED):
        incident = services.incident_transition(incident=incident, actor=actor, to=to, confirm_firing=True)
    return incident


@pytest.mark.parametrize("severity,creates", [(1, True), (2, True), (3, False), (4, False)])
def test_resolving_sev1_and_sev2_creates_a_required_review(severity, creates):
    ic = person(Role.INCIDENT_COMMANDER)
    incident = services.incident_declare(actor=ic, title="Checkout down", severity=severity, commander=ic)
    _resolve(incident, ic)
    review = Review.objects.filter(incident=incident).first()
    assert (review is not None) == creates
    if creates:
        assert review.required and review.author == ic and review.status == ReviewStatus.DRAFT
        assert Delivery.objects.filter(event="review.created", target=ic.email).exists()
        assert TimelineEvent.objects.filter(incident=incident, kind=EventKind.REVIEW).exists()


def test_close_waits_for_the_published_review():
    ic = person(Role.INCIDENT_COMMANDER)
    incident = _resolve(services.incident_declare(actor=ic, title="API 5xx", severity=2, commander=ic), ic)
    with pytest.raises(services.TransitionRefused, match="review is published"):
        services.incident_transition(incident=incident, actor=ic, to=Status.CLOSED)
    assert Incident.objects.get(pk=incident.pk).status == Status.RESOLVED
    Review.objects.filter(incident=incident).update(status=ReviewStatus.PUBLISHED)
    assert services.incident_transition(incident=incident, actor=ic, to=Status.CLOSED).status == Status.CLOSED


def test_reopen_and_resolve_again_keeps_one_review():
    ic = person(Role.INCIDENT_COMMANDER)
    incident = _resolve(services.incident_declare(actor=ic, title="Redis full", severity=1, commander=ic), ic)
    services.incident_reopen(incident=incident, actor=ic, reason="came back")
    services.incident_transition(incident=incident, actor=ic, to=Status.RESOLVED)
    assert Review.objects.filter(incident=incident).count() == 1


def _alert(key: str):
    return services.open_or_update_from_source(dedup_key=key, title="Queue backlog > 5000", severity=2, text="firing")


@pytest.mark.parametrize("all_closed", [True, False])
def test_recurrence_links_the_earlier_review_and_says_when_the_fix_did_not_hold(all_closed):
    ic = person(Role.INCIDENT_COMMANDER)
    first = _alert("alertmanager:abc")
    services.incident_set_roles(incident=first, actor=ic, commander=ic)
    first = _resolve(first, ic)
    review = Review.objects.get(incident=first)
    ActionItem.objects.create(review=review, title="Autoscale consumers", status=ActionStatus.DONE)
    ActionItem.objects.create(
        review=review,
        title="Add a DLQ",
        status=ActionStatus.WONT_DO if all_closed else ActionStatus.OPEN,
        wont_do_reason="superseded" if all_closed else "",
    )
    second = _alert("alertmanager:abc")
    assert second.pk != first.pk
    recurrence = Recurrence.objects.get(incident=second)
    assert recurrence.earlier == first and recurrence.earlier_review == review
    assert recurrence.matched_on == "alert group"
    assert recurrence.fix_did_not_hold is all_closed
    later_note = TimelineEvent.objects.get(incident=second, kind=EventKind.REVIEW).text
    assert f"Recurrence of {first.reference}" in later_note
    assert ("the fix did not hold" in later_note) is all_closed
    assert TimelineEvent.objects.filter(incident=first, text__contains=f"Recurred as {second.reference}").exists()


def test_no_recurrence_for_a_different_group_or_a_manual_incident():
    ic = person(Role.INCIDENT_COMMANDER)
    first = _alert("check:1")
    _resolve(first, ic)
    _alert("check:2")
    services.incident_declare(actor=ic, title="By hand", severity=3)
    assert not Recurrence.objects.exists()
