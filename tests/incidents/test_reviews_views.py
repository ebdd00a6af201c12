"""Review pages: rendering, constant query counts, live preview, exports,
conflict handling, the manager view with 2 years of history."""

import csv
import io

import pytest
from django.urls import reverse

from incidents.models import Incident
from incidents.reviews.demo import generate_history
from incidents.reviews.models import Review, ReviewStatus
from opsconsole.roles import Role
from tests.incidents.review_factories import action_item, person, review_for

pytestmark = pytest.mark.django_db


def _url(name, review, *args):
    return reverse(f"incidents:{name}", args=[review.incident.reference, *args])


def test_review_page_constant_queries(client_as, django_assert_max_num_queries):
    client = client_as(Role.SRE)
    review = review_for(client.user)
    for i in range(30):
        action_item(review, title=f"Item {i}")
    with django_assert_max_num_queries(25):
        response = client.get(_url("review", review))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Item 29" in body and review.incident.reference in body


def test_preview_is_sanitised(client_as):
    client = client_as(Role.SRE)
    review = review_for(client.user)
    response = client.post(
        _url("review_preview", review),
        {"section": "root_cause", "root_cause": "**pool** <script>alert(1)</script> [x](javascript:alert(1))"},
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "<strong>pool</strong>" in body
    assert "<script" not in body and "javascript:" not in body
    assert client.post(_url("review_preview", review), {"section": "nope"}).status_code == 400


def test_stale_save_is_refused_and_keeps_the_text(client_as):
    client = client_as(Role.SRE)
    review = review_for(client.user)
    Review.objects.filter(pk=review.pk).update(version=3, summary="Someone else's summary")
    response = client.post(_url("review_save", review), {"version": 1, "summary": "My summary"})
    assert response.status_code == 409
    body = response.content.decode()
    assert "Someone saved this review" in body
    assert "My summary" in body  # the editor's text is kept in the form
    assert Review.objects.get(pk=review.pk).summary == "Someone else's summary"


def test_submit_refusal_says_which_section(client_as):
    client = client_as(Role.SRE)
    review = review_for(client.user, filled=False)
    Review.objects.filter(pk=review.pk).update(root_cause="")
    response = client.post(_url("review_submit", review), {"version": review.version}, follow=True)
    assert "“Root cause” is empty." in response.content.decode()
    assert Review.objects.get(pk=review.pk).status == ReviewStatus.DRAFT


def test_bad_tracker_url_is_a_message_not_a_500(client_as):
    client = client_as(Role.SRE)
    review = review_for(client.user)
    response = client.post(
        _url("review_action_add", review),
        {"title": "x", "priority": 2, "status": "open", "tracker_url": "javascript:alert(1)"},
        follow=True,
    )
    assert response.status_code == 200
    assert "must be an http:// or https:// URL" in response.content.decode()
    assert not review.action_items.exists()


def test_markdown_export_holds_timeline_and_action_items(client_as):
    from runbooks.models import Runbook

    client = client_as(Role.VIEWER)
    review = review_for()
    runbook = Runbook.objects.create(title="TLS certificate expired")
    action_item(review, title="Alert 14 days before expiry")
    action_item(review, title="Add the renewal check to the runbook", runbook=runbook)
    response = client.get(_url("review_export", review))
    text = response.content.decode()
    assert response["Content-Type"].startswith("text/markdown")
    assert f"**Incident ID**: {review.incident.reference}" in text
    assert "## Timeline" in text and "Declared SEV-2" in text
    assert "- [ ] Alert 14 days before expiry" in text
    assert "runbook “TLS certificate expired”" in text
    page = client.get(_url("review", review)).content.decode()
    assert reverse("runbooks:detail", args=[runbook.pk]) in page
    assert "## Root cause" in text and "## Lessons learned" in text


def test_printable_page_has_no_navigation(client_as):
    client = client_as(Role.VIEWER)
    review = review_for()
    body = client.get(_url("review_print", review)).content.decode()
    assert review.incident.reference in body
    assert 'class="nav"' not in body and "<script" not in body


def test_restricted_incident_review_is_hidden(client_as):
    review = review_for()
    Incident.objects.filter(pk=review.incident_id).update(restricted=True)
    client = client_as(Role.SRE)
    assert client.get(_url("review", review)).status_code == 404
    assert client.get(_url("review_export", review)).status_code == 404
    manager_page = client.get(reverse("incidents:reviews")).content.decode()
    assert review.incident.reference not in manager_page


def test_incident_page_says_why_close_is_refused(client_as):
    client = client_as(Role.MANAGER)
    review = review_for(status=ReviewStatus.APPROVED)
    body = client.get(reverse("incidents:detail", args=[review.incident.reference])).content.decode()
    assert "cannot be closed until its post-incident review is published" in body
    assert 'data-testid="review-card"' in body


def test_dashboard_shows_my_reviews_and_overdue_items(client_as):
    from datetime import timedelta

    from django.utils import timezone

    client = client_as(Role.SRE)
    review = review_for(client.user)
    action_item(review, title="Overdue thing", owner=client.user, due_date=timezone.localdate() - timedelta(days=2))
    body = client.get(reverse("dashboard")).content.decode()
    assert 'data-testid="dashboard-my-reviews"' in body and review.incident.reference in body
    assert "Overdue thing" in body


@pytest.fixture
def two_years(db, make_user):
    for name, role in (("sre", Role.SRE), ("commander", Role.INCIDENT_COMMANDER), ("manager", Role.MANAGER)):
        make_user(role, username=name)
    return generate_history(incidents=400, days=730)


@pytest.mark.parametrize("query", ["", "?weeks=52", "?weeks=4&service=postgresql"])
def test_manager_page_constant_queries_with_two_years_of_history(
    client_as, two_years, django_assert_max_num_queries, query
):
    assert two_years == 400
    client = client_as(Role.MANAGER)
    with django_assert_max_num_queries(20):
        response = client.get(reverse("incidents:reviews") + query)
    assert response.status_code == 200
    body = response.content.decode()
    for slug in ("incidents-per-week", "time-to-acknowledge", "time-to-resolve", "breach-rate", "top-services"):
        assert f'data-testid="chart-{slug}"' in body
    assert "<svg" in body and "Numbers (text alternative)" in body


def test_manager_page_lists_awaiting_and_overdue(client_as):
    from datetime import timedelta

    from django.utils import timezone

    awaiting = review_for(status=ReviewStatus.IN_REVIEW)
    late = review_for()
    Review.objects.filter(pk=late.pk).update(due_date=timezone.localdate() - timedelta(days=3))
    owner = person(Role.SRE, username="owner-a")
    action_item(late, title="Late fix", owner=owner, due_date=timezone.localdate() - timedelta(days=1))
    client = client_as(Role.MANAGER)
    body = client.get(reverse("incidents:reviews")).content.decode()
    assert awaiting.incident.reference in body
    assert late.incident.reference in body
    assert "owner-a" in body and "Late fix" in body


def test_trend_csv_has_the_numbers(client_as, two_years):
    client = client_as(Role.VIEWER)
    response = client.get(reverse("incidents:reviews_trend_csv", args=["incidents-per-week"]) + "?weeks=52")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][0] == "label" and len(rows) == 53
    assert client.get(reverse("incidents:reviews_trend_csv", args=["nope"])).status_code == 404


def test_manager_filters_reject_bad_values_quietly(client_as):
    client = client_as(Role.MANAGER)
    assert client.get(reverse("incidents:reviews") + "?weeks=9999&service=%3Cx%3E").status_code == 200
