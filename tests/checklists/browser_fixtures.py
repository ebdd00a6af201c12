"""Playwright fixtures for the checklist browser test (own names, so they sit
beside the shared tests/browser/conftest.py fixtures without clashing)."""

import os

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

@pytest.fixture
def ck_browser(browser):
    """The shared session Chromium (tests/browser/conftest.py): a second
    sync_playwright() in the same process fails while that one runs."""
    yield browser


@pytest.fixture
def ck_signed_in_page(ck_browser, live_server):
    """ck_signed_in_page(user) → a page in its own browser context, signed in
    as that user through the real sign-in form; console errors are collected
    on `page.errors`."""
    contexts = []

    def open_page(user, password: str = "pw-for-tests-1"):
        context = ck_browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.errors = []
        # Script errors, CSP violations, and failed requests (the favicon aside: not ours).
        page.on(
            "console",
            lambda m: (
                page.errors.append(m.text)
                if m.type == "error" and not m.text.startswith("Failed to load resource")
                else None
            ),
        )
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.on(
            "response",
            lambda r: (
                page.errors.append(f"{r.status} {r.url}")
                if r.status >= 400 and not r.url.endswith("/favicon.ico")
                else None
            ),
        )
        page.goto(f"{live_server.url}/accounts/login/")
        page.locator("input[name=login]").fill(user.username)
        page.locator("input[name=password]").fill(password)
        page.locator("form button[type=submit]").first.click()
        page.wait_for_url(lambda url: "/accounts/login" not in url)
        return page

    yield open_page
    for context in contexts:
        context.close()
