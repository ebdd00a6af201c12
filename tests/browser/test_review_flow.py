"""A post-incident review in real Chromium: resolve a SEV-2, the review
appears pre-filled, the author submits, a Manager requests changes, the author
fixes it, the Manager approves and publishes; the Markdown export holds the
timeline and the action items, and only then may the incident close."""

import os
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from incidents.models import Incident, Review

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def demo_users(transactional_db):
    call_command("seed_demo", stdout=open(os.devnull, "w"))


@pytest.fixture
def manager_page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


def test_review_flow(demo_users, live_server, page, manager_page, sign_in):
    author = page
    sign_in(author, "commander")
    author.wait_for_url(f"{live_server.url}/")
    author.goto(f"{live_server.url}/incidents/declare/")
    author.get_by_label("Title").fill("Payment processing failed")
    author.get_by_role("radio", name=re.compile(r"SEV-2 — Major degradation")).check()
    author.get_by_role("button", name="Declare").click()
    author.wait_for_url(re.compile(r"/incidents/INC-\d{4}-\d{2}-\d{2}-\d{3}/$"))
    reference = author.url.rstrip("/").rsplit("/", 1)[1]
    author.get_by_label("Note (Markdown)").fill("Payment gateway timeouts: failing over to the secondary")
    author.get_by_role("button", name="Add note").click()
    note = author.get_by_test_id("timeline").locator("li", has_text="failing over to the secondary")
    note.get_by_role("button", name=re.compile("star")).click()
    expect(author.get_by_test_id("timeline").locator("li.starred")).to_have_count(1)
    author.get_by_test_id("to-acknowledged").click()
    author.get_by_test_id("to-resolved").click()
    expect(author.get_by_test_id("status")).to_have_text("Resolved")

    # Resolving a SEV-2 created the review; closing waits for it.
    expect(author.get_by_test_id("close-why")).to_contain_text("until its post-incident review is published")
    expect(author.get_by_test_id("to-closed")).to_be_disabled()
    author.get_by_test_id("review-link").click()
    author.wait_for_url(f"{live_server.url}/incidents/{reference}/review/")
    expect(author.get_by_test_id("review-status")).to_have_text("Draft")
    header = author.get_by_test_id("review-header")
    expect(header).to_contain_text(reference)
    review_timeline = author.get_by_test_id("review-timeline")
    expect(review_timeline).to_contain_text("failing over to the secondary")  # the starred event
    expect(author.locator(".facts")).to_contain_text("SEV-2")

    # Live preview: the server's sanitised rendering appears beside the text.
    author.get_by_label("Summary (required)").fill("Payments failed for **20 minutes**.")
    expect(author.get_by_test_id("preview-summary").locator("strong")).to_have_text("20 minutes")
    author.get_by_label("Customer impact (required)").fill("Checkout failed for a fifth of customers.")
    author.get_by_label("Root cause (required)").fill("The gateway's connection pool was exhausted.")
    author.get_by_label("Lessons learned (required)").fill("Watch the pool, not only the error rate.")
    author.get_by_test_id("save-review").click()
    expect(author.get_by_role("status")).to_contain_text("Review saved.")

    form = author.get_by_test_id("action-form")
    form.get_by_label("Title").fill("Alert on gateway pool saturation")
    form.get_by_label("Owner").fill("sam")  # the searchable people picker
    form.locator("#id_owner-found").get_by_label("Sam Reyes").check()
    form.get_by_label("Due date").fill(f"{timezone.localdate() + timedelta(days=14):%Y-%m-%d}")
    author.get_by_test_id("add-action").click()
    expect(author.get_by_test_id("action-items")).to_contain_text("Alert on gateway pool saturation")
    author.get_by_test_id("submit-review").click()
    expect(author.get_by_test_id("review-status")).to_have_text("In review")

    manager = manager_page
    sign_in(manager, "manager")
    manager.wait_for_url(f"{live_server.url}/")
    manager.goto(f"{live_server.url}/incidents/reviews/")
    expect(manager.get_by_test_id("awaiting")).to_contain_text(reference)
    manager.get_by_test_id("awaiting").get_by_role("link", name=reference).click()
    changes = manager.get_by_test_id("changes-form")
    changes.get_by_label("Section").select_option("root_cause")
    changes.get_by_label("What needs to change").fill("Why was the pool exhausted? Go one level deeper.")
    manager.get_by_test_id("request-changes").click()
    expect(manager.get_by_test_id("review-status")).to_have_text("Draft")

    author.reload()
    expect(author.get_by_test_id("review-status")).to_have_text("Draft")
    expect(author.locator("#comments")).to_contain_text("Go one level deeper")
    author.get_by_label("Root cause (required)").fill(
        "A retry storm after a gateway deploy exhausted the pool (max 50 connections)."
    )
    author.get_by_test_id("save-review").click()
    author.get_by_test_id("submit-review").click()
    expect(author.get_by_test_id("review-status")).to_have_text("In review")

    manager.reload()
    manager.get_by_test_id("approve-review").click()
    expect(manager.get_by_test_id("review-status")).to_have_text("Approved")
    manager.get_by_test_id("publish-review").click()
    expect(manager.get_by_test_id("review-status")).to_have_text("Published")
    expect(manager.get_by_test_id("section-root_cause")).to_contain_text("retry storm")

    export = manager.request.get(f"{live_server.url}/incidents/{reference}/review.md")
    text = export.text()
    assert export.status == 200
    assert f"**Incident ID**: {reference}" in text
    assert "## Timeline" in text and "failing over to the secondary" in text
    assert "- [ ] Alert on gateway pool saturation (owner Sam Reyes" in text
    assert "retry storm" in text

    # Published: the incident may close now.
    author.goto(f"{live_server.url}/incidents/{reference}/")
    author.get_by_test_id("to-closed").click()
    expect(author.get_by_test_id("status")).to_have_text("Closed")
    assert Incident.objects.get(reference=reference).status == "closed"
    assert Review.objects.get(incident__reference=reference).status == "published"
    assert not author.console_log.csp_violations()
    assert not author.console_log.errors()
