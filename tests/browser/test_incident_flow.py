"""Run an incident in real Chromium: declare SEV-2, acknowledge, two people
add notes at the same moment from two browsers (each sees both without a
reload), mitigate, resolve; the timeline holds every step in order."""

import os
import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from incidents.models import Incident, TimelineEvent

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def demo_users(transactional_db):
    call_command("seed_demo", stdout=open(os.devnull, "w"))


@pytest.fixture
def second_page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.errors = errors
    yield page
    context.close()


def _status(page, label: str) -> None:
    expect(page.get_by_test_id("status")).to_have_text(label)


def test_incident_flow_with_two_browsers(demo_users, live_server, page, second_page, sign_in):
    ic, sre = page, second_page
    sign_in(ic, "commander")
    ic.wait_for_url(f"{live_server.url}/")
    ic.goto(f"{live_server.url}/incidents/declare/")
    ic.get_by_label("Title").fill("Payment processing failed")
    ic.get_by_role("radio", name=re.compile(r"SEV-2 — Major degradation")).check()
    ic.get_by_role("button", name="Declare").click()
    ic.wait_for_url(re.compile(r"/incidents/INC-\d{4}-\d{2}-\d{2}-\d{3}/$"))
    reference = ic.url.rstrip("/").rsplit("/", 1)[1]
    assert Incident.objects.filter(reference=reference, severity_id=2).exists()
    expect(ic.get_by_test_id("severity")).to_have_text("SEV-2")
    expect(ic.get_by_test_id("ack-countdown")).to_contain_text("left")  # the live countdown ticks

    ic.get_by_test_id("to-acknowledged").click()
    _status(ic, "Acknowledged")

    sign_in(sre, "sre")
    sre.wait_for_url(f"{live_server.url}/")
    sre.goto(f"{live_server.url}/incidents/{reference}/")
    # Markers that a reload would wipe out.
    for p in (ic, sre):
        p.evaluate("window.__noReload = true")

    ic.get_by_label("Note (Markdown)").fill("Commander: payment gateway timeouts, **failing over**")
    sre.get_by_label("Note (Markdown)").fill("SRE: p95 of PaymentService at 8 s")
    ic.get_by_role("button", name="Add note").click()
    sre.get_by_role("button", name="Add note").click()
    for p in (ic, sre):
        timeline = p.get_by_test_id("timeline")
        expect(timeline).to_contain_text("payment gateway timeouts", timeout=5_000)
        expect(timeline).to_contain_text("p95 of PaymentService at 8 s", timeout=5_000)
        expect(timeline.locator("strong", has_text="failing over")).to_have_count(1)
        expect(p.get_by_label("Note (Markdown)")).to_have_value("")  # the form was reset
        assert p.evaluate("window.__noReload") is True
        # Each event appears once even if the poll and the post both returned it.
        ids = timeline.locator("li[data-event-id]").evaluate_all("els => els.map(e => e.dataset.eventId)")
        assert len(ids) == len(set(ids))

    ic.get_by_test_id("to-mitigated").click()
    _status(ic, "Mitigated")
    # The SRE sees the status event arrive on their timeline without reloading.
    expect(sre.get_by_test_id("timeline")).to_contain_text("Mitigated", timeout=5_000)
    assert sre.evaluate("window.__noReload") is True
    ic.get_by_test_id("to-resolved").click()
    _status(ic, "Resolved")

    # Resolving a SEV-2 also creates its post-incident review (a "review" event), and a
    # service with an escalation policy pages its first level ("escalation"): not steps here.
    events = list(
        TimelineEvent.objects.filter(incident__reference=reference)
        .exclude(kind__in=["review", "escalation"])
        .order_by("occurred_at", "id")
    )
    steps = [(e.kind, e.data.get("to")) for e in events]
    assert steps[:2] == [("declared", None), ("status", "acknowledged")]
    assert sorted(steps[2:4]) == [("note", None), ("note", None)]
    assert steps[4:] == [("status", "mitigated"), ("status", "resolved")]
    assert {e.author.username for e in events if e.kind == "note"} == {"commander", "sre"}
    # The page shows the same steps, newest first.
    ic.reload()
    kinds = (
        ic.get_by_test_id("timeline").locator("li[data-event-id]").evaluate_all("els => els.map(e => e.dataset.kind)")
    )
    assert [k for k in kinds[::-1] if k not in ("review", "escalation")] == [kind for kind, _ in steps]
    assert ic.console_log.csp_violations() == [] and ic.console_log.errors() == []
    assert sre.errors == []
