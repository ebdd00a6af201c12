"""Walk the roles matrix (docs/roles.md) for every URL that changes state:
anonymous → sign-in redirect (or 401 for the API), a role without the
capability → 403, a role with it → success."""

import importlib
import pkgutil
from pathlib import Path

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse

import tests
from opsconsole.models import ApiToken
from opsconsole.roles import CAPABILITIES, Role
from tests.permissions import Case


def _all_cases() -> list[Case]:
    cases = []
    for module_info in pkgutil.iter_modules([str(Path(tests.__file__).parent)]):
        if not module_info.ispkg:
            continue
        try:
            module = importlib.import_module(f"tests.{module_info.name}.permission_cases")
        except ModuleNotFoundError:
            continue
        cases.extend(module.CASES)
    return cases


CASES = _all_cases()


def _protected_views(resolver=None, namespace=""):
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            ns = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _protected_views(pattern, ns)
        elif isinstance(pattern, URLPattern) and pattern.name:
            capability = getattr(pattern.callback, "required_capability", None)
            if capability:
                yield f"{namespace}{pattern.name}", capability, pattern


def test_every_state_changing_url_has_a_matrix_case():
    covered = {case.url_name for case in CASES}
    missing = [name for name, capability, pattern in _protected_views() if capability != "read" and name not in covered]
    assert not missing, f"protected URLs without a permission-matrix case: {missing}"


def test_cases_name_the_capability_their_view_enforces():
    enforced = {name: capability for name, capability, _ in _protected_views()}
    wrong = [
        (c.url_name, c.capability, enforced.get(c.url_name)) for c in CASES if enforced.get(c.url_name) != c.capability
    ]
    assert not wrong, f"case capability differs from the view's: {wrong}"


def _request(client, case: Case, user, as_user: bool = False):
    kwargs = case.setup(user)
    url = reverse(case.url_name, kwargs=kwargs)
    send = getattr(client, case.method)
    data = case.data(kwargs)
    headers = {k: v for k, v in case.headers.items() if k != "content_type"}
    if as_user and getattr(resolve(url).func, "api_view", False):
        # API views authenticate with the user's bearer token, not the session.
        raw, prefix, token_hash = ApiToken.generate()
        ApiToken.objects.create(user=user, name="matrix", prefix=prefix, token_hash=token_hash)
        headers["Authorization"] = f"Bearer {raw}"
    if case.headers.get("content_type") == "application/json":
        return send(url, data, content_type="application/json", headers=headers)
    return send(url, data, headers=headers)


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.url_name)
def test_anonymous_is_sent_to_sign_in(client, make_user, case):
    owner = make_user(Role.ADMIN)
    response = _request(client, case, owner)
    if getattr(getattr(response, "resolver_match", None), "func", None) and getattr(
        response.resolver_match.func, "api_view", False
    ):
        assert response.status_code == 401
    else:
        assert response.status_code == 302
        assert reverse("account_login") in response["Location"]


@pytest.mark.django_db
@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.name)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.url_name)
def test_role_matrix(client, make_user, case, role):
    user = make_user(role)
    client.force_login(user)
    response = _request(client, case, user, as_user=True)
    if role in CAPABILITIES[case.capability]:
        assert response.status_code in case.ok_statuses, (
            f"{role} should be allowed {case.url_name}: got {response.status_code}"
        )
    else:
        assert response.status_code == 403, f"{role} should be refused {case.url_name}: got {response.status_code}"


def _simple_pages():
    for name, capability, pattern in _protected_views():
        if capability == "read" and not pattern.pattern.regex.groups:
            yield name


@pytest.mark.django_db
@pytest.mark.parametrize("url_name", sorted(set(_simple_pages())))
def test_read_pages_need_a_role(client, make_user, url_name):
    url = reverse(url_name)
    assert client.get(url).status_code == 302
    client.force_login(make_user(None))
    assert client.get(url).status_code == 403
    client.force_login(make_user(Role.VIEWER))
    assert client.get(url).status_code == 200
