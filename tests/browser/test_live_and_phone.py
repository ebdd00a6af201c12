"""Live pages, phone width and accessibility in real Chromium.

- Two people: what one does on an incident appears on the other's open
  incident page, list and dashboard, and a check's new state on the status
  board, without a reload (opsconsole/live.py).
- One loop over every navigation page and the main detail pages, as an admin,
  at desktop and at phone width (390 px): nothing scrolls sideways at 390 px,
  and axe-core (bundled by axe-playwright-python, no CDN) finds no serious or
  critical violation at either width.
"""

import os

import pytest
from django.conf import settings
from django.core.management import call_command
from playwright.sync_api import expect

from opsconsole.roles import Role

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PHONE = {"width": 390, "height": 844}
# Names the innermost elements that stick out on the right (for the failure message).
WIDEST = """() => Array.from(document.querySelectorAll("main *")).filter(el =>
  el.getBoundingClientRect().right > window.innerWidth + 1 &&
  !Array.from(el.children).some(c => c.getBoundingClientRect().right > window.innerWidth + 1)
).slice(0, 3).map(el => el.tagName.toLowerCase() + (el.className ? "." + String(el.className).split(" ").join(".") : "")
)"""
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture
def open_as(browser, sign_in):
    contexts = []

    def open_page(username, password="pw-for-tests-1", viewport=DESKTOP):
        context = browser.new_context(viewport=viewport)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.problems = []
        page.on("pageerror", lambda e: page.problems.append(str(e)))
        page.on(
            "console",
            lambda m: page.problems.append(m.text) if "Content Security Policy" in m.text else None,
        )
        sign_in(page, username, password)
        page.wait_for_url(lambda url: "/accounts/login" not in url)
        return page

    yield open_page
    for context in contexts:
        context.close()


def test_another_persons_acknowledge_appears_everywhere(live_server, make_user, open_as):
    from healthchecks.models import Check
    from healthchecks.probes import ProbeResult
    from healthchecks.services import record_results
    from incidents import services
    from opsconsole.models import Service

    watcher = make_user(Role.INCIDENT_COMMANDER, first_name="Wanda", last_name="Watcher")
    acker = make_user(Role.INCIDENT_COMMANDER, first_name="Ari", last_name="Acker")
    incident = services.incident_declare(actor=watcher, title="Checkout errors", severity=2)
    check = Check.objects.create(service=Service.objects.create(slug="api", name="API"), name="API health")
    detail_url = f"{live_server.url}/incidents/{incident.reference}/"

    mine = open_as(watcher.username)
    board = mine.context.new_page()
    listing = mine.context.new_page()
    mine.goto(detail_url)
    listing.goto(f"{live_server.url}/incidents/?status=open")
    board.goto(f"{live_server.url}/health/")
    expect(mine.get_by_test_id("status")).to_have_text("Triggered")
    expect(mine.get_by_test_id("ack-countdown")).to_be_visible()
    expect(board.locator(f"tr[data-state] >> text={check.name}")).to_be_visible()
    # Someone typing in the header is not interrupted: the SEV reason keeps its text.
    mine.locator("#id_reason").fill("half typed")

    theirs = open_as(acker.username)
    theirs.goto(detail_url)
    theirs.get_by_test_id("to-acknowledged").click()
    expect(theirs.get_by_test_id("status")).to_have_text("Acknowledged")

    # My header still holds my half-typed reason: it waits until I leave it.
    mine.wait_for_timeout(3_500)
    expect(mine.locator("#id_reason")).to_have_value("half typed")
    mine.locator("#id_reason").fill("")
    mine.locator("h1").click()
    header = mine.get_by_test_id("incident-header")
    expect(mine.get_by_test_id("status")).to_have_text("Acknowledged", timeout=8_000)
    expect(header.get_by_test_id("to-acknowledged")).to_have_count(0)
    expect(header.get_by_test_id("ack-countdown")).to_have_count(0)
    expect(mine.get_by_test_id("commander")).to_have_text("Ari Acker")
    expect(listing.locator(f"tr[data-reference='{incident.reference}']")).to_contain_text("Acknowledged")
    expect(listing.locator(f"tr[data-reference='{incident.reference}']")).to_contain_text("Ari Acker")

    record_results([(check.pk, ProbeResult(state="critical", message="HTTP 500"))], reschedule=False)
    expect(board.locator("tr[data-state='critical']")).to_contain_text(check.name, timeout=8_000)
    for page in (mine, theirs):
        assert page.problems == []


def _detail_urls():
    from checklists.models import ChecklistRun
    from healthchecks.models import Check
    from incidents.models import Incident
    from incidents.reviews.models import Review
    from oncall.models import Handoff, Rotation
    from runbooks.execution import execution_start
    from runbooks.models import Runbook

    admin = (
        __import__("django.contrib.auth", fromlist=["get_user_model"]).get_user_model().objects.get(username="admin")
    )
    runbook = Runbook.objects.exclude(current_version=None).order_by("pk").first()
    execution = execution_start(actor=admin, runbook=runbook)
    review = Review.objects.select_related("incident").order_by("pk").first()
    return [
        f"/incidents/{Incident.objects.order_by('-pk').first().reference}/",
        f"/health/checks/{Check.objects.order_by('pk').first().pk}/",
        f"/checklists/runs/{ChecklistRun.objects.order_by('-pk').first().pk}/",
        f"/runbooks/{runbook.pk}/",
        f"/runbooks/executions/{execution.pk}/",
        f"/incidents/{review.incident.reference}/review/",
        f"/oncall/rotations/{Rotation.objects.order_by('pk').first().pk}/settings/",
        f"/oncall/handoffs/{Handoff.objects.order_by('pk').first().pk}/",
    ]


def test_every_page_fits_a_phone_and_passes_axe(live_server, open_as):
    from axe_playwright_python.sync_playwright import Axe

    call_command("seed_demo", stdout=open(os.devnull, "w"))
    details = _detail_urls()
    axe = Axe()
    problems = []
    for viewport in (PHONE, DESKTOP):
        page = open_as("admin", settings.DEMO_PASSWORD, viewport=viewport)
        # Read from the DOM: at 390 px the menu is folded (hidden from the accessibility tree).
        paths = page.locator("nav.nav a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
        assert len(paths) >= 7
        for path in [*paths, "/profile/", *details]:
            page.goto(live_server.url + path)
            if viewport is PHONE:
                widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
                if widths[0] > widths[1]:
                    culprits = page.evaluate(WIDEST)
                    problems.append(f"{path} at 390 px is {widths[0]} px wide: {culprits}")
            result = axe.run(page)
            for violation in result.response["violations"]:
                if violation["impact"] in ("serious", "critical"):
                    targets = [node["target"] for node in violation["nodes"][:3]]
                    problems.append(f"{path} @{viewport['width']}: {violation['id']} {targets}")
        assert page.problems == []
    assert problems == [], "\n".join(problems)


def test_phone_menu_folds_and_opens(live_server, make_user, open_as):
    user = make_user(Role.SRE)
    page = open_as(user.username, viewport=PHONE)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav).to_be_hidden()
    header_height = page.locator("header.topbar").bounding_box()["height"]
    assert header_height < 60  # brand and a Menu button: one line
    toggle = page.get_by_role("button", name="Menu")
    toggle.click()
    expect(nav).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    nav.get_by_role("link", name="Incidents").click()
    page.wait_for_url("**/incidents/")
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
