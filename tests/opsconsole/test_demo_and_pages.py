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


# Links a page may hold that are not pages: downloads, the sign-out form's target, the admin.
_NOT_PAGES = (".md", ".csv", ".ics", "/accounts/logout/", "/admin/", "/metrics", "/ping/")
_DEMO_USERNAMES = {
    Role.VIEWER: "viewer",
    Role.SRE: "sre",
    Role.INCIDENT_COMMANDER: "commander",
    Role.MANAGER: "manager",
}


@pytest.mark.django_db
@pytest.mark.parametrize("role", list(_DEMO_USERNAMES))
def test_no_page_offers_a_role_a_link_or_form_it_may_not_use(client, role):
    """Walk the demo console from the dashboard as the demo user of `role`
    would by clicking: every linked page opens, and every form a page shows
    is one the role may post (a 403 is a button it should not have been
    shown). The forms are posted empty: a refusal for a bad form is a 200
    or 400 with its errors, never a 403."""
    import collections
    import re

    call_command("seed_demo")
    client.force_login(User.objects.get(username=_DEMO_USERNAMES[role]))
    seen, queue, refused, forms = set(), collections.deque(["/"]), [], {}
    while queue and len(seen) < 250:
        path = queue.popleft()
        if path in seen:
            continue
        seen.add(path)
        response = client.get(path)
        assert response.status_code < 500, path
        if response.status_code == 403:
            refused.append(path)
        if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
            continue
        html = response.content.decode()
        # Plain forms and htmx ones (hx-post on the form or on a button).
        for tag in re.findall(r"<(?:form|button|input)\b[^>]*>", html):
            action = re.search(r'\b(?:hx-post|action)="([^"]*)"', tag)
            if ('method="post"' in tag or "hx-post=" in tag) and "logout" not in tag:
                forms.setdefault((action.group(1) if action else path).replace("&amp;", "&") or path, path)
        # Without a query string: filters and pages of one list are one page here.
        for href in re.findall(r'href="(/[^"#?]*)"', html):
            if not href.startswith("//") and not any(part in href for part in _NOT_PAGES):
                queue.append(href)
    assert len(seen) > 60 and forms  # the walk reached the areas and their forms, not just the dashboard
    refused += [
        f"POST {action} (form on {page})" for action, page in forms.items() if client.post(action).status_code == 403
    ]
    assert refused == []
