"""Shared Playwright fixtures: one real Chromium per test session.

Every area's browser tests reuse `browser` (session-scoped) and take a fresh
`page` (own context: cookies never leak between tests). Debian's
/usr/bin/chromium is driven directly; `playwright install` is never needed.
"""

import os
from collections.abc import Iterator

import pytest

# Playwright's sync API runs an event loop in this thread; Django's ORM would
# otherwise refuse to run from the test body.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def playwright_instance():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_instance):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium is missing at {CHROMIUM}: apt-get install chromium (or run .ci/run)")
    browser = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


class ConsoleLog(list):
    """Console messages of a page, as "type: text" strings."""

    def csp_violations(self) -> list[str]:
        return [line for line in self if "Content Security Policy" in line]

    def errors(self) -> list[str]:
        return [line for line in self if line.startswith("error:")]


@pytest.fixture
def page(browser) -> Iterator:
    """A fresh page (own browser context) at laptop width; `page.console_log`
    collects every console message so tests can assert there are no CSP
    violations or script errors."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.console_log = ConsoleLog()
    page.on("console", lambda message: page.console_log.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: page.console_log.append(f"error: {error}"))
    yield page
    context.close()


@pytest.fixture
def sign_in(live_server):
    """sign_in(page, "sre") signs a demo user in through the real form."""
    from django.conf import settings

    def _sign_in(page, username: str, password: str | None = None) -> None:
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Username or email").fill(username)
        page.get_by_label("Password").fill(password or settings.DEMO_PASSWORD)
        page.get_by_role("button", name="Sign in").click()

    return _sign_in
