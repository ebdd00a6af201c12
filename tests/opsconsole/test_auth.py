"""Sign-in behaviour (django-allauth): username or email, closed sign-up,
password reset by email, TOTP two-factor, rate-limited failures, OIDC."""

import json
import os
import re
import subprocess
import sys
import time

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import (
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
)
from django.conf import settings
from django.test import override_settings
from django.urls import reverse

from opsconsole.models import User
from opsconsole.roles import Role, user_roles

PASSWORD = "pw-for-tests-1"  # tests/conftest.py make_user


def _login(client, login: str, password: str = PASSWORD):
    return client.post(reverse("account_login"), {"login": login, "password": password})


def _signed_in_as(client) -> User | None:
    response = client.get(reverse("dashboard"))
    if response.status_code != 200:
        return None
    return response.context["user"]


@pytest.mark.django_db
@pytest.mark.parametrize("login", ["alice", "alice@example.com", "ALICE@Example.com"])
def test_sign_in_by_username_or_email(client, make_user, login):
    user = make_user(Role.SRE, username="alice", email="alice@example.com")

    response = _login(client, login)

    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard")
    assert _signed_in_as(client) == user


@pytest.mark.django_db
def test_wrong_password_is_refused_with_a_clear_error(client, make_user):
    make_user(Role.SRE, username="alice", email="alice@example.com")

    response = _login(client, "alice", "wrong")

    assert response.status_code == 200
    assert "username and/or password you specified are not correct" in response.content.decode()
    assert _signed_in_as(client) is None


SIGNUP = {
    "username": "newcomer",
    "email": "newcomer@example.com",
    "password1": "a-long-enough-passphrase-42",
    "password2": "a-long-enough-passphrase-42",
}


@pytest.mark.django_db
def test_sign_up_is_closed_by_default(client):
    assert settings.OPEN_SIGNUP is False

    page = client.get(reverse("account_signup"))
    response = client.post(reverse("account_signup"), SIGNUP)

    assert "Sign Up Closed" in page.content.decode()
    assert response.status_code == 200
    assert not User.objects.filter(username="newcomer").exists()
    assert "/accounts/signup/" not in client.get(reverse("account_login")).content.decode()


@pytest.mark.django_db
@override_settings(OPEN_SIGNUP=True)
def test_open_sign_up_creates_a_viewer(client):
    assert "/accounts/signup/" in client.get(reverse("account_login")).content.decode()

    response = client.post(reverse("account_signup"), SIGNUP)

    assert response.status_code == 302, response.content.decode()[:2000]
    user = User.objects.get(username="newcomer")
    assert user.email == "newcomer@example.com"
    assert user_roles(user) == {Role.VIEWER}
    assert _signed_in_as(client) == user


@pytest.mark.django_db
def test_password_reset_by_email_sets_a_new_password(client, make_user, mailoutbox):
    make_user(Role.SRE, username="alice", email="alice@example.com")

    response = client.post(reverse("account_reset_password"), {"email": "alice@example.com"})
    assert response.status_code == 302

    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == ["alice@example.com"]
    link = re.search(r"http://testserver(/accounts/password/reset/key/\S+/)", mail.body).group(1)

    # The key link stashes the key in the session and redirects to a key-less form.
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200
    set_url = form_page.redirect_chain[-1][0]
    new_password = "brand-new-passphrase-77"
    done = client.post(set_url, {"password1": new_password, "password2": new_password})
    assert done.status_code == 302

    client.logout()
    assert _login(client, "alice", PASSWORD).status_code == 200  # old password no longer works
    assert _signed_in_as(client) is None
    assert _login(client, "alice", new_password).status_code == 302
    assert _signed_in_as(client).username == "alice"


@pytest.mark.django_db
def test_password_reset_for_an_unknown_address_sends_nothing_useful(client, mailoutbox):
    response = client.post(reverse("account_reset_password"), {"email": "nobody@example.com"})
    # Same answer as for a known address: the form must not reveal who has an account.
    assert response.status_code == 302
    assert all("/accounts/password/reset/key/" not in mail.body for mail in mailoutbox)


def _current_code(secret: str) -> str:
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


@pytest.fixture
def totp_user(make_user):
    user = make_user(Role.SRE, username="alice", email="alice@example.com")
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    assert Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
    return user, secret


@pytest.mark.django_db
def test_totp_user_needs_the_code_after_the_password(client, totp_user):
    user, secret = totp_user

    response = _login(client, "alice")

    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_authenticate")
    assert _signed_in_as(client) is None, "the password alone must not sign a TOTP user in"

    response = client.post(reverse("mfa_authenticate"), {"code": _current_code(secret)})
    assert response.status_code == 302
    assert _signed_in_as(client) == user


@pytest.mark.django_db
def test_totp_wrong_code_is_refused(client, totp_user):
    _user, secret = totp_user
    _login(client, "alice")
    wrong = f"{(int(_current_code(secret)) + 1) % 10**6:06d}"

    response = client.post(reverse("mfa_authenticate"), {"code": wrong})

    assert response.status_code == 200
    assert "Incorrect code" in response.content.decode()
    assert _signed_in_as(client) is None


@pytest.mark.django_db
def test_failures_for_an_account_slow_it_down_but_never_refuse_the_right_password(client, make_user):
    """Five wrong passwords used to lock the account for five minutes, right password included."""
    make_user(Role.INCIDENT_COMMANDER, username="alice", email="alice@example.com")
    after = settings.LOGIN_SLOWDOWN_AFTER
    for _ in range(after):
        assert "not correct" in _login(client, "alice", "wrong").content.decode()

    response = _login(client, "alice", PASSWORD)

    assert response.status_code == 302
    assert _signed_in_as(client) is not None


def _guess_until_slowed_down(client, login: str) -> tuple[int, str]:
    """Wrong passwords until the account is slowed down: (passwords checked, the wait message)."""
    checked = 0
    for _ in range(40):
        body = _login(client, login, "a-wrong-guess").content.decode()
        if "please wait" in body:
            return checked, body
        assert "not correct" in body
        checked += 1
    raise AssertionError("40 wrong passwords in a row and no slow-down")


def _hold_the_slot(username: str, seconds: int) -> None:
    """The first wait is one second, which a busy machine's next request can
    outlast: hold the account's slot as a longer wait would."""
    from django.core.cache import cache

    from opsconsole.models import User

    cache.set(f"signin-slowdown:user:{User.objects.get(username=username).pk}:slot", 1, timeout=seconds)


@pytest.mark.django_db
def test_guessing_one_account_is_slowed_down(client, make_user, settings):
    settings.LOGIN_SLOWDOWN_MAX_DELAY_SECONDS = 5
    make_user(Role.SRE, username="alice", email="alice@example.com")
    checked, body = _guess_until_slowed_down(client, "alice")
    assert checked >= settings.LOGIN_SLOWDOWN_AFTER
    _hold_the_slot("alice", settings.LOGIN_SLOWDOWN_MAX_DELAY_SECONDS)
    # Both spellings of the account share the count; refused attempts check no password.
    assert "please wait" in _login(client, "ALICE@example.com", PASSWORD).content.decode()
    for _ in range(4):
        _login(client, "alice", "a-wrong-guess")
    assert _signed_in_as(client) is None
    time.sleep(settings.LOGIN_SLOWDOWN_MAX_DELAY_SECONDS + 0.5)
    assert _login(client, "alice", PASSWORD).status_code == 302


@pytest.mark.django_db
def test_an_attacker_cannot_slow_down_the_owners_usual_browser(client, make_user, settings):
    from django.test import Client

    settings.LOGIN_SLOWDOWN_MAX_DELAY_SECONDS = 30
    make_user(Role.INCIDENT_COMMANDER, username="alice", email="alice@example.com")
    assert _login(client, "alice").status_code == 302  # the owner's browser: trusted from now on
    client.post(reverse("account_logout"))
    attacker = Client()
    _guess_until_slowed_down(attacker, "alice")
    _hold_the_slot("alice", 60)
    assert "please wait" in _login(attacker, "alice", PASSWORD).content.decode()

    response = _login(client, "alice", PASSWORD)

    assert response.status_code == 302
    assert _signed_in_as(client) is not None


@pytest.mark.django_db
def test_many_failures_from_one_address_are_refused(client, make_user, settings):
    settings.ACCOUNT_RATE_LIMITS = {"login_failed": "3/5m/ip"}
    make_user(Role.SRE, username="alice", email="alice@example.com")
    make_user(Role.SRE, username="bob", email="bob@example.com")
    for login in ("alice", "bob", "carol"):
        assert "not correct" in _login(client, login, "wrong").content.decode()

    response = _login(client, "bob", PASSWORD)

    assert "Too many failed sign-in attempts from your address" in response.content.decode()
    assert _signed_in_as(client) is None


def test_a_per_account_lockout_cannot_be_configured():
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_ALLOW_ASYNC_UNSAFE",)}
    env.update(DEBUG="true", LOGIN_FAILED_RATE_LIMIT="30/5m/ip,5/5m/key")
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0 and "locks accounts out" in result.stderr


OIDC_APP = {
    "openid_connect": {
        "APPS": [
            {
                "provider_id": "corp-sso",
                "name": "Corp SSO",
                "client_id": "ops-console",
                "secret": "s3cret",
                "settings": {"server_url": "https://sso.example.com/realms/ops"},
            }
        ]
    }
}


@pytest.mark.django_db
def test_oidc_provider_is_offered_on_the_sign_in_page(client):
    assert "Corp SSO" not in client.get(reverse("account_login")).content.decode()

    with override_settings(SOCIALACCOUNT_PROVIDERS=OIDC_APP):
        page = client.get(reverse("account_login")).content.decode()

    assert "Corp SSO" in page
    assert "/accounts/oidc/corp-sso/login/" in page


def test_oidc_settings_come_from_the_environment():
    env = {
        **os.environ,
        "DEBUG": "true",
        "OIDC_SERVER_URL": "https://sso.example.com/realms/ops",
        "OIDC_CLIENT_ID": "ops-console",
        "OIDC_CLIENT_SECRET": "s3cret",
        "OIDC_PROVIDER_ID": "corp-sso",
        "OIDC_NAME": "Corp SSO",
    }
    code = "import json; from django.conf import settings; print(json.dumps(settings.SOCIALACCOUNT_PROVIDERS))"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    providers = json.loads(result.stdout.strip().splitlines()[-1])
    assert providers == OIDC_APP
