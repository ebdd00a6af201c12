"""The Users page (Admins): search, invite, roles, deactivate, reset two-factor; audited."""

import re

import pytest
from allauth.mfa.models import Authenticator
from django.core import mail
from django.urls import reverse

from opsconsole.models import ApiToken, AuditEntry, User
from opsconsole.roles import Role, user_roles

pytestmark = pytest.mark.django_db


def _audit(action):
    return AuditEntry.objects.filter(action=action).order_by("-seq").first()


@pytest.mark.parametrize("extra", [3, 40])
def test_list_and_search_with_constant_queries(client_as, make_user, extra, django_assert_max_num_queries):
    client = client_as(Role.ADMIN)
    for i in range(extra):
        make_user(Role.SRE, username=f"sre{i:03d}", email=f"sre{i}@example.com")
    make_user(Role.VIEWER, username="dana", first_name="Dana", last_name="Okafor")
    with django_assert_max_num_queries(9):
        body = client.get(reverse("users")).content.decode()
    assert 'data-username="dana"' in body and "Users" in body
    body = client.get(reverse("users"), {"q": "okaf"}).content.decode()
    assert re.findall(r'data-username="([^"]+)"', body) == ["dana"]


def test_invite_creates_a_passwordless_account_and_mails_a_link(client_as, django_capture_on_commit_callbacks):
    client = client_as(Role.ADMIN)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("users"),
            {"username": "newbie", "email": "newbie@example.com", "first_name": "New", "roles": ["SRE", "Viewer"]},
        )
    assert response.status_code == 302
    user = User.objects.get(username="newbie")
    assert not user.has_usable_password() and user_roles(user) == {Role.SRE, Role.VIEWER}
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["newbie@example.com"]
    assert re.search(r"/accounts/password/reset/key/\S+", mail.outbox[0].body)
    entry = _audit("user.invite")
    assert entry.after["username"] == "newbie" and entry.actor_id == client.user.pk
    # The same address again: refused on the form, nothing created or sent.
    response = client.post(reverse("users"), {"username": "other", "email": "NEWBIE@example.com"})
    assert response.status_code == 400 and "already has that username or e-mail" in response.content.decode()
    assert not User.objects.filter(username="other").exists() and len(mail.outbox) == 1


def test_roles_are_set_audited_and_an_admin_keeps_their_own(client_as, make_user):
    client = client_as(Role.ADMIN)
    person = make_user(Role.VIEWER)
    response = client.post(reverse("user_detail", args=[person.pk]), {"roles": ["Manager"]})
    assert response.status_code == 302
    assert user_roles(User.objects.get(pk=person.pk)) == {Role.MANAGER}
    entry = _audit("user.roles")
    assert entry.before == {"roles": ["Viewer"]} and entry.after == {"roles": ["Manager"]}
    response = client.post(reverse("user_detail", args=[client.user.pk]), {"roles": ["Viewer"]})
    assert response.status_code == 400 and "your own Admin role" in response.content.decode()
    assert Role.ADMIN in user_roles(User.objects.get(pk=client.user.pk))


def test_deactivate_stops_sign_in_and_tokens_then_reactivate(client_as, make_user, client):
    admin_client = client_as(Role.ADMIN)
    person = make_user(Role.SRE)
    raw, prefix, token_hash = ApiToken.generate()
    ApiToken.objects.create(user=person, name="bot", prefix=prefix, token_hash=token_hash)
    assert ApiToken.find_active(raw) is not None
    admin_client.post(reverse("user_set_active", args=[person.pk]), {"active": "0"})
    assert not User.objects.get(pk=person.pk).is_active and ApiToken.find_active(raw) is None
    assert _audit("user.deactivate").target_id == str(person.pk)
    admin_client.post(reverse("user_set_active", args=[person.pk]), {"active": "1"})
    assert User.objects.get(pk=person.pk).is_active and _audit("user.activate") is not None
    # Never oneself.
    response = admin_client.post(reverse("user_set_active", args=[admin_client.user.pk]), {"active": "0"}, follow=True)
    assert "cannot deactivate your own account" in response.content.decode()
    assert User.objects.get(pk=admin_client.user.pk).is_active


def test_reset_mfa_removes_every_authenticator(client_as, make_user):
    client = client_as(Role.ADMIN)
    person = make_user(Role.SRE)
    Authenticator.objects.create(user=person, type=Authenticator.Type.TOTP, data={"secret": "x"})
    Authenticator.objects.create(user=person, type=Authenticator.Type.RECOVERY_CODES, data={"seed": "y"})
    body = client.post(reverse("user_reset_mfa", args=[person.pk]), follow=True).content.decode()
    assert "Two-factor reset" in body and not Authenticator.objects.filter(user=person).exists()
    assert _audit("user.mfa_reset").before == {"authenticators": ["recovery_codes", "totp"]}
    body = client.post(reverse("user_reset_mfa", args=[person.pk]), follow=True).content.decode()
    assert "had no two-factor" in body


@pytest.mark.parametrize("role", list(Role))
def test_users_and_tokens_in_navigation_and_profile_for_admins_only(client_as, role):
    client = client_as(role)
    body = client.get(reverse("profile")).content.decode()
    shown = f'href="{reverse("users")}"' in body and f'href="{reverse("api_tokens")}"' in body
    assert shown is (role == Role.ADMIN)
    assert (client.get(reverse("users")).status_code == 200) is (role == Role.ADMIN)
