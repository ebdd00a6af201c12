"""The Django admin works under the strict Content-Security-Policy."""

import os

import pytest

from opsconsole.models import Service

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_admin_pages_raise_no_csp_violations(live_server, page, sign_in, django_user_model):
    django_user_model.objects.create_superuser("root", "root@example.com", "root-password-1")
    service = Service.objects.create(name="Checkout API", slug="checkout-api", tier=1)
    sign_in(page, "root", "root-password-1")
    page.wait_for_url(f"{live_server.url}/")

    page.goto(f"{live_server.url}/admin/opsconsole/service/")
    assert page.get_by_role("link", name="Checkout API").is_visible()
    page.goto(f"{live_server.url}/admin/opsconsole/service/{service.pk}/change/")
    # The inline formset's "Add another" link is made by admin JavaScript: scripts ran.
    rows = page.locator("tr.form-row.dynamic-links")
    assert rows.count() == 1
    page.get_by_role("button", name="Add another Service link").click()
    assert rows.count() == 2
    page.goto(f"{live_server.url}/admin/opsconsole/user/add/")
    assert page.get_by_label("Username").is_visible()

    assert page.console_log.csp_violations() == []
    assert page.console_log.errors() == []
