"""Sessions read with their user (opsconsole/sessions.py): one statement
for "which session, which user, which roles", and the user it joins is
trusted only when the signed session data names the same user."""

import importlib

import pytest
from django.contrib.auth import SESSION_KEY
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from opsconsole.models import Session
from opsconsole.roles import Role

pytestmark = pytest.mark.django_db


def _statements(client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]


USER_QUERY = "FROM opsconsole_user u WHERE"  # opsconsole.auth_backends._user_query


def test_a_signed_in_request_reads_session_user_and_roles_in_one_statement(client_as):
    client = client_as(Role.SRE)
    session = Session.objects.get()
    assert session.user_id == client.user.pk  # filled from the session's data when saved
    first, *rest = _statements(client, reverse("checklists:index"))
    assert "FROM opsconsole_session s LEFT JOIN opsconsole_user u" in first and "auth_group" in first
    assert not [sql for sql in rest if USER_QUERY in sql or "opsconsole_session" in sql]  # not read again
    response = client.get(reverse("checklists:index"))
    assert response.context["user"] == client.user and response.context["can_tick"]


def test_the_joined_user_is_used_only_for_the_user_the_signed_data_names(client_as, make_user):
    """A session row whose column names someone else (an Admin) must not sign
    its holder in as them: the user comes from the signed data, as before."""
    client = client_as(Role.VIEWER)
    admin = make_user(Role.ADMIN)
    Session.objects.update(user_id=admin.pk)
    statements = _statements(client, reverse("checklists:index"))
    assert "opsconsole_session" in statements[0] and USER_QUERY in statements[1]
    response = client.get(reverse("checklists:index"))
    assert response.context["user"] == client.user and not response.context["can_tick"]
    assert client.get(reverse("users")).status_code == 403


def test_a_session_whose_user_is_gone_or_inactive_is_signed_out(client_as):
    client = client_as(Role.SRE)
    client.user.is_active = False
    client.user.save(update_fields=["is_active"])
    response = client.get(reverse("checklists:index"))
    assert response.status_code == 302 and reverse("account_login") in response["Location"]


def test_a_changed_password_still_ends_other_sessions(client_as):
    client = client_as(Role.SRE)
    client.user.set_password("another-password-42")
    client.user.save(update_fields=["password"])
    response = client.get(reverse("checklists:index"))
    assert response.status_code == 302 and reverse("account_login") in response["Location"]


def test_the_migration_copies_live_sessions_with_their_user(make_user):
    """Sessions of django_session (the table before 0010) carry over, so nobody is signed out."""
    from django.apps import apps
    from django.contrib.sessions.backends.db import SessionStore as DjangoStore

    user = make_user(Role.SRE)
    old = DjangoStore()
    old[SESSION_KEY] = str(user.pk)
    old.create()  # into django_session
    anonymous = DjangoStore()
    anonymous["x"] = 1
    anonymous.create()
    migration = importlib.import_module("opsconsole.migrations.0010_session")
    with connection.schema_editor() as editor:
        migration.copy_sessions(apps, editor)
    copied = dict(Session.objects.values_list("session_key", "user_id"))
    assert copied == {old.session_key: user.pk, anonymous.session_key: None}
