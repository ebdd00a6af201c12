"""Two SREs tick the morning checklist at the same time in real Chromium."""

import os

import pytest
from playwright.sync_api import expect

from checklists import demo, services
from checklists.models import ChecklistRun, RunItem
from opsconsole.roles import Role

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def open_as(browser, sign_in):
    """open_as(user) → a page in a browser context of its own, signed in
    through the real form (shared fixtures: tests/browser/conftest.py).
    `page.problems` collects script errors, CSP violations and failed requests."""
    contexts = []

    def open_page(user):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.problems = []
        page.on(
            "console",
            lambda m: (
                page.problems.append(m.text)
                if m.type == "error" and not m.text.startswith("Failed to load resource")
                else None
            ),
        )
        page.on("pageerror", lambda e: page.problems.append(str(e)))
        page.on(
            "response",
            lambda r: page.problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
        )
        sign_in(page, user.username, "pw-for-tests-1")
        page.wait_for_url(lambda url: "/accounts/login" not in url)
        return page

    yield open_page
    for context in contexts:
        context.close()


def _status(page, item):
    return page.locator(f"#item-{item.pk}-status")


def test_two_sres_tick_one_run_and_sign_it_off(live_server, make_user, open_as):
    templates = demo.seed_templates()
    alice = make_user(Role.SRE, first_name="Alice", last_name="A")
    bob = make_user(Role.SRE, first_name="Bob", last_name="B")
    run = services.run_start(actor=alice, template=templates["Morning checklist"])
    items = list(run.items.order_by("order"))
    assert len(items) == 7
    url = f"{live_server.url}/checklists/runs/{run.pk}/"

    first = open_as(alice)
    second = open_as(bob)
    first.goto(url)
    second.goto(url)

    # Both tick at the same time, interleaved: Alice items 1-3, Bob items 4-6.
    for mine, theirs in zip(items[0:3], items[3:6], strict=True):
        first.locator(f"#item-{mine.pk}-status [data-testid=tick]").click()
        second.locator(f"#item-{theirs.pk}-status [data-testid=tick]").click()
    for item in items[0:3]:
        expect(_status(first, item)).to_have_attribute("data-state", "ticked")
    # Each sees the other's ticks within 5 s, without a reload (htmx polling).
    for item in items[3:6]:
        expect(_status(first, item)).to_have_attribute("data-state", "ticked", timeout=5_000)
        expect(_status(first, item)).to_contain_text("Bob B")
    for item in items[0:3]:
        expect(_status(second, item)).to_have_attribute("data-state", "ticked", timeout=5_000)
        expect(_status(second, item)).to_contain_text("Alice A")
    expect(first.locator("[data-testid=progress-text]")).to_contain_text("6 of 7 done", timeout=5_000)

    # Alice adds a note to item 1 and marks item 7 N/A.
    item1 = first.locator(f"#item-{items[0].pk}")
    item1.locator("summary").click()
    item1.get_by_label("Note").fill("Two overnight warnings, both self-resolved.")
    item1.get_by_label("Evidence (text or link)").fill("https://grafana.example.com/d/overnight")
    item1.get_by_role("button", name="Save note").click()
    expect(first.locator(f"#item-{items[0].pk} [data-testid=note]")).to_contain_text("Two overnight warnings")
    item7 = first.locator(f"#item-{items[6].pk}")
    item7.locator("summary").click()
    item7.get_by_label("Not applicable because").fill("Security tooling is down for maintenance")
    item7.get_by_role("button", name="Mark N/A").click()
    expect(_status(first, items[6])).to_have_attribute("data-state", "na")
    expect(first.locator("[data-testid=progress-text]")).to_contain_text("7 of 7 done")
    # Bob sees the note and the N/A arrive too.
    expect(_status(second, items[6])).to_have_attribute("data-state", "na", timeout=5_000)
    expect(_status(second, items[0])).to_contain_text("Two overnight warnings", timeout=5_000)

    first.locator("[data-testid=sign-off]").click()
    expect(first.locator("[data-testid=run-status]")).to_have_text("Completed")
    # Bob's open copy follows: signed off, with no stale Sign-off button or forms.
    expect(second.locator("[data-testid=run-status]")).to_have_text("Completed", timeout=6_000)
    expect(second.locator("[data-testid=sign-off]")).to_have_count(0)
    expect(second.locator("[data-testid=tick], [data-testid=untick], .ck-note-form")).to_have_count(0)
    assert first.problems == [] and second.problems == []  # no CSP violation, no script error

    run.refresh_from_db()
    assert run.status == ChecklistRun.Status.COMPLETED and run.signed_off_by == alice
    states = {item.pk: item for item in RunItem.objects.filter(run=run)}
    assert [states[i.pk].ticked_by for i in items[0:3]] == [alice] * 3
    assert [states[i.pk].ticked_by for i in items[3:6]] == [bob] * 3
    assert states[items[0].pk].note == "Two overnight warnings, both self-resolved."
    assert states[items[0].pk].evidence == "https://grafana.example.com/d/overnight"
    assert states[items[6].pk].state == RunItem.State.NA
    assert states[items[6].pk].na_reason == "Security tooling is down for maintenance"


def test_keyboard_user_ticks_a_whole_checklist(live_server, make_user, open_as):
    """Focus stays on the item just ticked after the htmx swap, so Tab reaches
    the next one: the whole run is ticked from the keyboard alone."""
    templates = demo.seed_templates()
    sre = make_user(Role.SRE)
    run = services.run_start(actor=sre, template=templates["Morning checklist"])
    items = list(run.items.order_by("order"))
    page = open_as(sre)
    page.goto(f"{live_server.url}/checklists/runs/{run.pk}/")
    first_tick = f"tick-{items[0].pk}"
    for _ in range(60):  # Tab from the top of the page to the first item's box
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == first_tick:
            break
    for index, item in enumerate(items):
        assert page.evaluate("document.activeElement.id") == f"tick-{item.pk}"
        page.keyboard.press("Space")
        expect(_status(page, item)).to_have_attribute("data-state", "ticked")
        # The swapped-in box (now "Untick") has the focus, not <body>.
        expect(page.locator(f"#tick-{item.pk}")).to_be_focused()
        assert page.evaluate("document.activeElement.dataset.testid") == "untick"
        if index + 1 < len(items):
            page.keyboard.press("Tab")  # the item's "Note, evidence, N/A" summary
            page.keyboard.press("Tab")  # the next item's box
    expect(page.locator("[data-testid=progress-text]")).to_contain_text(f"{len(items)} of {len(items)} done")
    assert RunItem.objects.filter(run=run, state=RunItem.State.TICKED).count() == len(items)
    assert page.problems == []
