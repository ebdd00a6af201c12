"""A handoff in real Chromium: the outgoing engineer writes and submits it, the
incoming engineer (a second browser context, their own session) confirms it."""

import os

import pytest
from playwright.sync_api import expect

from incidents import services as incidents
from oncall.models import Handoff, Rotation
from opsconsole.models import Service
from opsconsole.roles import Role
from tests.oncall.factories import shift

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_outgoing_writes_a_handoff_and_incoming_confirms_it(live_server, browser, page, sign_in, make_user):
    rotation = Rotation.objects.create(name="Primary SRE")
    olga = make_user(Role.SRE, username="olga", first_name="Olga")
    ivan = make_user(Role.SRE, username="ivan", first_name="Ivan")
    shift(rotation, olga, -11, 1)
    shift(rotation, ivan, 1, 13)
    api = Service.objects.create(name="API", slug="api")
    incident = incidents.incident_declare(actor=olga, title="Slow checkout", severity=2, services=[api])

    sign_in(page, "olga", "pw-for-tests-1")
    page.goto(f"{live_server.url}/oncall/handoffs/new/")
    form = page.get_by_test_id("handoff-form")
    expect(form.get_by_test_id("handoff-items")).to_contain_text(f"{incident.reference} Slow checkout")
    page.get_by_label(f"Notes on {incident.reference} Slow checkout").fill("Rolled back 4.2, watching p95")
    page.get_by_label("Recent changes").fill("Deployed 4.2 and rolled it back")
    page.get_by_label("Other outstanding issues").fill("Disk on db-2 at 81%")
    page.get_by_role("button", name="Submit handoff").click()
    expect(page.get_by_test_id("handoff-status")).to_contain_text("Waiting for the incoming engineer")
    handoff = Handoff.objects.get()
    assert handoff.incoming == ivan and handoff.outgoing == olga
    assert [i.notes for i in handoff.items.order_by("position")] == ["Rolled back 4.2, watching p95", ""]
    assert page.get_by_test_id("handoff-answer").count() == 0  # the outgoing engineer cannot confirm it
    assert page.console_log.csp_violations() == [] and page.console_log.errors() == []

    other = browser.new_context(viewport={"width": 1280, "height": 900})
    other.set_default_timeout(10_000)
    incoming_page = other.new_page()
    try:
        sign_in(incoming_page, "ivan", "pw-for-tests-1")
        incoming_page.goto(f"{live_server.url}/")
        expect(incoming_page.get_by_test_id("handoff-panel")).to_contain_text("Olga → Ivan")
        incoming_page.get_by_test_id("handoff-panel").get_by_role("link", name="Olga → Ivan").click()
        expect(incoming_page.get_by_role("cell", name="Rolled back 4.2, watching p95")).to_be_visible()
        incoming_page.get_by_label("Access verified (VPN, kubectl, AWS)").check()
        incoming_page.get_by_role("button", name="Handoff confirmed").click()
        expect(incoming_page.get_by_test_id("handoff-status")).to_contain_text("Handoff confirmed")
        expect(incoming_page.get_by_test_id("handoff-status")).to_contain_text("Ivan")
    finally:
        other.close()
    handoff.refresh_from_db()
    assert handoff.status == "acknowledged" and handoff.acknowledged_by == ivan
    assert handoff.confirmations == ["access"]

    page.reload()
    expect(page.get_by_test_id("handoff-status")).to_contain_text("Handoff confirmed")
