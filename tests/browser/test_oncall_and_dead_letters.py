"""On-call overrides and dead-letter replay in real Chromium (htmx, CSP on)."""

import datetime
import os

import pytest
from playwright.sync_api import expect

from notifications.models import Delivery
from oncall.models import Override, Rotation, Shift
from opsconsole.roles import Role
from tests.notifications.webhook_server import WebhookReceiver

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_manager_adds_and_removes_an_override_without_a_page_reload(live_server, page, sign_in, make_user):
    manager = make_user(Role.MANAGER, username="maya", timezone="Asia/Singapore")
    make_user(Role.SRE, username="sam", first_name="Sam", last_name="Reyes")
    rotation = Rotation.objects.create(name="Primary SRE")
    sign_in(page, manager.username, "pw-for-tests-1")
    page.goto(f"{live_server.url}/oncall/")
    page.evaluate("window.notReloaded = true")  # survives only if the page is not reloaded
    card = page.locator(f"#rotation-{rotation.pk}")
    expect(card.get_by_test_id("on-call-now")).to_contain_text("Nobody")

    # Sam covers from one hour ago (Singapore time, as the manager types it) for 12 hours.
    start = datetime.datetime.now(datetime.UTC).astimezone(datetime.timezone(datetime.timedelta(hours=8)))
    start = start.replace(second=0, microsecond=0) - datetime.timedelta(hours=1)
    card.locator("summary", has_text="Add an override").click()
    card.get_by_label("Who covers").select_option(label="Sam Reyes (sam)")
    card.get_by_label("From").fill(start.strftime("%Y-%m-%dT%H:%M"))
    card.get_by_label("Until").fill((start + datetime.timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M"))
    card.get_by_role("button", name="Add override").click()

    expect(card.get_by_test_id("on-call-now")).to_contain_text("Sam Reyes")
    expect(card).to_contain_text("Sam Reyes covers Primary SRE")
    assert page.evaluate("window.notReloaded") is True
    assert Override.objects.get().starts_at == start.astimezone(datetime.UTC)
    assert Shift.objects.get().user.username == "sam"

    # An overlapping one is refused in place.
    card.locator("summary", has_text="Add an override").click()
    card.get_by_label("Who covers").select_option(label="Sam Reyes (sam)")
    card.get_by_label("From").fill((start + datetime.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
    card.get_by_label("Until").fill((start + datetime.timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"))
    card.get_by_role("button", name="Add override").click()
    expect(card.get_by_role("alert")).to_contain_text("overlaps Sam Reyes's override")
    assert Override.objects.count() == 1

    # Removing a shift asks first (hx-confirm): cancelling keeps it.
    questions = []

    def answer(dialog, accept):
        questions.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda dialog: answer(dialog, False))
    card.get_by_role("button", name="Remove").click()
    expect(card.get_by_test_id("on-call-now")).to_contain_text("Sam Reyes")
    assert Override.objects.count() == 1 and "Remove Sam Reyes" in questions[0]
    page.once("dialog", lambda dialog: answer(dialog, True))
    card.get_by_role("button", name="Remove").click()
    expect(card.get_by_test_id("on-call-now")).to_contain_text("Nobody")
    assert not Shift.objects.exists()
    assert page.evaluate("window.notReloaded") is True
    assert page.console_log.csp_violations() == [] and page.console_log.errors() == []


def test_sre_replays_a_dead_letter_from_the_list(live_server, page, sign_in, make_user, settings):
    receiver = WebhookReceiver().start()
    try:
        settings.NOTIFY_WEBHOOK_URL = receiver.url
        delivery = Delivery.objects.create(
            channel=Delivery.Channel.WEBHOOK,
            target=receiver.url,
            event="incident.declared",
            payload={"text": "INC-1 declared", "blocks": []},
            status=Delivery.Status.DEAD,
            attempts=5,
            last_error="HTTP 503: maintenance (gave up after 5 attempts)",
        )
        sre = make_user(Role.SRE, username="sam")
        sign_in(page, sre.username, "pw-for-tests-1")
        page.goto(f"{live_server.url}/")
        expect(page.get_by_test_id("dead-letter-count")).to_contain_text("1 dead letter")
        page.get_by_role("link", name="Dead-letter list").click()

        row = page.locator(f"#delivery-{delivery.pk}")
        expect(row).to_contain_text("HTTP 503: maintenance")
        row.get_by_role("button", name="Replay").click()

        expect(page.locator(f"#delivery-{delivery.pk}")).to_contain_text("queued for a fresh attempt")
        delivery.refresh_from_db()
        assert delivery.status == "sent"
        assert [r["json"]["text"] for r in receiver.successes] == ["INC-1 declared"]
        assert page.console_log.csp_violations() == [] and page.console_log.errors() == []
    finally:
        receiver.stop()
