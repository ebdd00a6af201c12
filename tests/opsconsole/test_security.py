"""Production security settings: check --deploy passes, the default key is
refused, and every response carries CSP, clickjacking and HSTS headers."""

import os
import secrets
import subprocess
import sys

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import reverse

from opsconsole.roles import Role

PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(64),
    "ALLOWED_HOSTS": "console.example.com",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_PRELOAD": "true",
}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    # Not the test process's own switches (DJANGO_ALLOW_ASYNC_UNSAFE is set for
    # Playwright and is itself a deploy-check error).
    drop = {"SECRET_KEY", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    clean = {k: v for k, v in os.environ.items() if k not in drop}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_passes_with_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_names_what_is_missing_without_preload_and_redirect():
    """Preload and the HTTPS redirect are opt-in (env vars): the check says so."""
    env = {**PRODUCTION_ENV, "SECURE_HSTS_PRELOAD": "false", "SECURE_SSL_REDIRECT": "false"}
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode != 0
    assert "security.W021" in result.stderr and "security.W008" in result.stderr


def test_production_refuses_the_default_secret_key():
    result = _manage("check", env={"DEBUG": "false"})
    assert result.returncode != 0
    assert "SECRET_KEY is the built-in development key" in result.stderr


@pytest.mark.parametrize(
    "key",
    ["short-but-random-Q3x9", "a" * 80, "abcd" * 20, "django-insecure-" + secrets.token_urlsafe(50)],
    ids=["too-short", "one-character", "four-characters", "django-insecure-prefix"],
)
def test_production_refuses_a_weak_secret_key(key):
    result = _manage("check", env={"DEBUG": "false", "SECRET_KEY": key})
    assert result.returncode != 0
    assert "SECRET_KEY is too weak" in result.stderr


def test_debug_runs_with_the_default_secret_key():
    result = _manage("check", env={"DEBUG": "true"})
    assert result.returncode == 0, result.stderr


def _csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


@pytest.mark.django_db
@pytest.mark.parametrize("url_name", ["account_login", "dashboard", "livez"])
def test_responses_carry_csp_and_clickjacking_protection(client_as, url_name):
    client = client_as(Role.SRE)
    response = client.get(reverse(url_name))

    directives = _csp_directives(response["Content-Security-Policy"])
    assert directives["script-src"] == ["'self'"]
    assert "'unsafe-inline'" not in directives.get("style-src", [])
    assert "'unsafe-eval'" not in directives["script-src"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["object-src"] == ["'none'"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.django_db
def test_https_responses_carry_hsts_and_cookies_are_secure(client, make_user):
    assert settings.DEBUG is False  # make test runs with production security settings
    make_user(Role.SRE, username="alice")

    page = client.get(reverse("account_login"), secure=True)
    assert page["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "includeSubDomains" in page["Strict-Transport-Security"]
    plain = client.get(reverse("account_login"))
    assert "Strict-Transport-Security" not in plain  # HSTS only means something over HTTPS

    response = client.post(reverse("account_login"), {"login": "alice", "password": "pw-for-tests-1"}, secure=True)
    assert response.status_code == 302
    session_cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert session_cookie["secure"] and session_cookie["httponly"]
    assert page.cookies[settings.CSRF_COOKIE_NAME]["secure"]


@pytest.mark.django_db
def test_admin_changelist_and_change_form_load_under_the_csp(client, make_user):
    """The admin ships no inline scripts (Django >= 4.1 uses data attributes),
    so it needs no CSP exemption; the browser test checks for violations."""
    admin = make_user(Role.ADMIN, username="root", is_staff=True, is_superuser=True)
    client.force_login(admin)

    changelist = client.get(reverse("admin:opsconsole_service_changelist"))
    change = client.get(reverse("admin:opsconsole_user_change", args=[admin.pk]))

    for response in (changelist, change):
        assert response.status_code == 200
        assert _csp_directives(response["Content-Security-Policy"])["script-src"] == ["'self'"]
        assert "<script>" not in response.content.decode()


@pytest.mark.django_db
@override_settings(SECURE_SSL_REDIRECT=True)
def test_https_redirect_spares_probes_and_the_scraper(client):
    """Probes and Prometheus reach the container over plain HTTP."""
    assert client.get(reverse("account_login")).status_code == 301
    assert client.get(reverse("livez")).status_code == 200
    assert client.get(reverse("metrics")).status_code == 200
