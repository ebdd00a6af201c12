"""Sign in through the real form in Chromium as every demo role."""

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

# transaction=True: the live server's thread sees only committed rows.
# serialized_rollback like the other browser tests: Django cannot mix it with
# plain transactional tests in one database (a plain flush re-creates content
# types under new ids, which the next serialized restore collides with).
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

NAV = ["Dashboard", "Incidents", "Checklists", "Runbooks", "Health", "On-call", "Reviews"]
ADMIN_NAV = NAV + ["Users", "API tokens"]  # people and tokens are managed by Admins only
DEMO_ROLES = [
    ("viewer", "Vera Viewer", "Viewer"),
    ("sre", "Sam Reyes", "SRE"),
    ("commander", "Chris Mendes", "Incident Commander"),
    ("manager", "Maya Ng", "Manager"),
    ("admin", "Ada Admin", "Admin"),
]
SCREENSHOTS = Path(settings.BASE_DIR) / "test-results" / "screenshots"


@pytest.fixture
def demo_data(transactional_db):
    call_command("seed_demo", stdout=open(os.devnull, "w"))


@pytest.mark.parametrize(("username", "full_name", "role"), DEMO_ROLES, ids=lambda r: r)
def test_each_demo_role_signs_in_sees_navigation_and_signs_out(
    demo_data, live_server, page, sign_in, username, full_name, role
):
    sign_in(page, username)

    page.wait_for_url(f"{live_server.url}/")
    nav = page.get_by_role("navigation", name="Main")
    assert nav.get_by_role("link").all_inner_texts() == (ADMIN_NAV if role == "Admin" else NAV)
    assert nav.get_by_role("link", name="Dashboard").get_attribute("aria-current") == "page"
    assert page.get_by_test_id("whoami").inner_text() == full_name
    assert page.locator(".whoami .role").inner_text() == role
    assert page.evaluate("typeof htmx") == "object"
    # The CSRF header htmx sends comes from <body hx-headers>: it must be the page's token.
    assert "X-CSRFToken" in page.locator("body").get_attribute("hx-headers")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/accounts/login/")
    assert page.get_by_role("heading", name="Sign in").is_visible()
    page.goto(f"{live_server.url}/")
    assert "/accounts/login/" in page.url, "after signing out the dashboard asks to sign in again"
    assert page.console_log.csp_violations() == []
    assert page.console_log.errors() == []


def test_wrong_password_shows_a_clear_error(demo_data, live_server, page, sign_in):
    sign_in(page, "sre", "not-the-password")

    alert = page.get_by_role("alert")
    assert "username and/or password you specified are not correct" in alert.inner_text()
    assert "/accounts/login/" in page.url
    assert page.get_by_label("Username or email").input_value() == "sre"
    assert page.console_log.csp_violations() == []


def test_sign_in_by_email_in_the_browser(demo_data, live_server, page, sign_in):
    sign_in(page, "manager@example.com")
    page.wait_for_url(f"{live_server.url}/")
    assert page.get_by_test_id("whoami").inner_text() == "Maya Ng"


@pytest.mark.parametrize("width", [1280, 390], ids=["laptop", "phone"])
def test_layout_fits_laptop_and_phone(demo_data, live_server, page, sign_in, width):
    """Nothing overflows horizontally; screenshots land in test-results/ for a human look."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{live_server.url}/accounts/login/")
    page.screenshot(path=SCREENSHOTS / f"sign-in-{width}.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= width

    sign_in(page, "commander")
    page.wait_for_url(f"{live_server.url}/")
    page.screenshot(path=SCREENSHOTS / f"dashboard-{width}.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    if width < 640:  # phone: the menu folds behind a button (console.js) and opens on a tap
        assert not page.get_by_role("navigation", name="Main").is_visible()
        page.get_by_role("button", name="Menu").click()
    assert page.get_by_role("navigation", name="Main").is_visible()
    assert page.console_log.csp_violations() == []
