"""Issue 13 in real Chromium: a refused N/A reason keeps what was typed and says the
real limit, in place; the people picker finds one of hundreds by typing; the copy
button copies a new API token."""

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from checklists import services as checklist_services
from checklists.models import ChecklistTemplate, RunItem, TemplateItem
from incidents import services as incident_services
from opsconsole.models import User
from opsconsole.roles import Role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_long_na_reason_is_refused_in_place_with_the_text_kept(live_server, page, sign_in, make_user):
    sre = make_user(Role.SRE, username="sam")
    template = ChecklistTemplate.objects.create(name="Morning")
    TemplateItem.objects.create(template=template, order=0, text="Backups ran")
    run = checklist_services.run_start(actor=sre, template=template)
    item = run.items.get()
    sign_in(page, "sam", "pw-for-tests-1")
    page.goto(f"{live_server.url}/checklists/runs/{run.pk}/")
    page.evaluate("window.notReloaded = true")
    box = page.locator(f"#item-{item.pk}")
    box.locator("summary").click()
    reason = "The backup job moved to the new cluster last week; " + "x" * 349  # 400 characters
    box.get_by_label("Not applicable because").fill(reason)
    box.get_by_role("button", name="Mark N/A").click()
    error = page.locator(f"#item-{item.pk}").get_by_test_id("na-error")
    expect(error).to_have_text("The reason is limited to 300 characters (this one has 400).")
    expect(page.locator(f"#item-{item.pk}").get_by_label("Not applicable because")).to_have_value(reason)
    assert page.evaluate("window.notReloaded") is True
    assert RunItem.objects.get(pk=item.pk).state == RunItem.State.OPEN
    # No message waits for a later page either.
    page.goto(f"{live_server.url}/checklists/")
    expect(page.locator(".messages")).to_have_count(0)


def test_people_picker_finds_one_of_hundreds(live_server, page, sign_in, make_user):
    commander = make_user(Role.INCIDENT_COMMANDER, username="chris")
    # 300 responders, written in one go (no password hashing: they never sign in).
    people = User.objects.bulk_create(
        User(username=f"sre{i:03d}", first_name="Sre", last_name=f"Number{i}") for i in range(300)
    )
    Group.objects.get_or_create(name=Role.SRE.value)[0].user_set.add(*people)
    incident = incident_services.incident_declare(actor=commander, title="Queue backlog", severity=3)
    sign_in(page, "chris", "pw-for-tests-1")
    page.goto(f"{live_server.url}/incidents/{incident.reference}/roles/")
    assert page.locator("select").count() == 0
    page.get_by_label("Responders").fill("number217")
    found = page.locator("#id_responders-found")
    expect(found.get_by_label("Sre Number217")).to_be_visible()
    found.get_by_label("Sre Number217").check()
    page.get_by_label("Commander").fill("chris")
    page.locator("#id_commander-found").get_by_text("chris").click()
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(f"{live_server.url}/incidents/{incident.reference}/")
    incident.refresh_from_db()
    assert [u.username for u in incident.responders.all()] == ["sre217"] and incident.commander == commander
    assert page.console_log.csp_violations() == [] and page.console_log.errors() == []


def test_copy_button_copies_a_new_token(live_server, browser, sign_in, make_user):
    make_user(Role.ADMIN, username="ada")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page = context.new_page()
    try:
        sign_in(page, "ada", "pw-for-tests-1")
        page.get_by_role("navigation", name="Main").get_by_role("link", name="API tokens").click()
        page.get_by_label("Owner").fill("ada")
        page.locator("#id_owner-found").get_by_text("ada").click()
        page.get_by_label("Name").fill("deploy bot")
        page.get_by_role("button", name="Create token").click()
        token = page.get_by_test_id("new-token").inner_text()
        page.get_by_role("button", name="Copy token").click()
        expect(page.get_by_role("button", name="Copied")).to_be_visible()
        assert page.evaluate("navigator.clipboard.readText()") == token
    finally:
        context.close()
