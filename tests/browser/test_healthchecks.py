"""Health checks in Chromium: the type-aware check form, Run now (htmx) and
the board filter, all under the strict CSP."""

import os

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from tests.healthchecks.targets import HttpTarget, json_route

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def demo_data(transactional_db):
    call_command("seed_demo", stdout=open(os.devnull, "w"))


def test_create_run_now_and_filter(demo_data, live_server, page, sign_in):
    from healthchecks.models import Check

    target = HttpTarget({"/healthz": json_route({"status": "healthy"})})
    try:
        sign_in(page, "sre")
        page.wait_for_url(f"{live_server.url}/")
        page.goto(f"{live_server.url}/health/checks/new/")
        kind = page.get_by_label("Kind")
        kind.select_option("postgres")
        assert page.get_by_label("PostgreSQL DSN").is_visible()
        assert not page.get_by_label("URL", exact=True).is_visible()
        kind.select_option("http")
        assert page.get_by_label("URL", exact=True).is_visible()
        assert not page.get_by_label("PostgreSQL DSN").is_visible()

        page.locator("#id_name").fill("checkout healthz")
        page.get_by_label("Service").select_option(label="Checkout API")
        page.get_by_label("URL", exact=True).fill("ftp://wrong")
        page.get_by_role("button", name="Save").click()
        assert page.get_by_text("Enter a URL starting with http:// or https://.").is_visible()

        page.get_by_label("URL", exact=True).fill(target.url("/healthz"))
        page.get_by_label("JSON path").fill("status")
        page.get_by_label("Json equals").fill("healthy")
        page.get_by_role("button", name="Save").click()
        page.wait_for_url("**/health/checks/*/")
        check = Check.objects.get(name="checkout healthz")

        page.get_by_role("button", name="Run now").click()
        result = page.locator("#run-result")
        result.get_by_text("HTTP 200 in").wait_for()
        assert "ok" in result.inner_text()
        # The whole page follows: state badge, last result and the result log.
        expect(page.locator("h1 .badge")).to_have_text("OK")
        expect(page.locator("#check-page")).not_to_contain_text("never run")
        expect(page.locator("#check-page")).not_to_contain_text("No results yet.")
        check.refresh_from_db()
        assert check.state == "ok"

        page.goto(f"{live_server.url}/health/")
        assert page.locator("tr[data-state]").count() == Check.objects.count()
        page.get_by_label("Type").select_option("http")
        page.wait_for_url("**/health/?*kind=http*")
        page.wait_for_function(
            f"document.querySelectorAll('tr[data-state]').length === {Check.objects.filter(kind='http').count()}"
        )
        assert page.get_by_role("link", name="checkout healthz").is_visible()
        assert page.console_log.csp_violations() == []
        assert page.console_log.errors() == []
    finally:
        target.close()
