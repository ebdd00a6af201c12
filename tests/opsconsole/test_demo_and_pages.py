import pytest
from django.core.management import call_command

from opsconsole.models import Service, User
from opsconsole.roles import Role, primary_role


@pytest.mark.django_db
def test_seed_demo_is_idempotent_with_one_user_per_role():
    call_command("seed_demo")
    counts = (User.objects.count(), Service.objects.count())
    call_command("seed_demo")
    assert (User.objects.count(), Service.objects.count()) == counts
    roles = {primary_role(user) for user in User.objects.all()}
    assert set(Role) <= roles
    assert User.objects.get(username="sre").check_password("opsconsole-demo")


@pytest.mark.django_db
def test_dashboard_shows_navigation_role_and_panels(client_as, django_assert_max_num_queries):
    call_command("seed_demo")  # every area's demo records, so every panel has rows
    client = client_as(Role.MANAGER, first_name="Maya", last_name="Ng")
    with django_assert_max_num_queries(25):
        page = client.get("/").content.decode()
    for label in ["Dashboard", "Incidents", "Checklists", "Runbooks", "Health", "On-call", "Reviews"]:
        assert f">{label}</a>" in page
    assert "Maya Ng" in page and "Manager" in page
    assert "Checkout API" in page


@pytest.mark.django_db
def test_every_nav_page_answers(client_as):
    client = client_as(Role.VIEWER)
    from django.urls import reverse

    from opsconsole.navigation import NAV_ITEMS

    for item in NAV_ITEMS:
        # Admin-only items (Users, API tokens) are neither shown to nor open for a Viewer.
        expected = 200 if item.capability == "read" else 403
        assert client.get(reverse(item.url_name)).status_code == expected, item.url_name
    admin = client_as(Role.ADMIN)
    for item in NAV_ITEMS:
        assert admin.get(reverse(item.url_name)).status_code == 200, item.url_name
