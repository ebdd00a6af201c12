import pytest
from django.urls import reverse

from opsconsole.models import ApiToken, AuditEntry
from opsconsole.roles import Role


@pytest.mark.django_db
def test_admin_creates_a_token_shown_once_and_stored_hashed(client_as, make_user):
    client = client_as(Role.ADMIN)
    bot = make_user(Role.SRE, username="chatbot")
    response = client.post(reverse("api_tokens"), {"owner": bot.pk, "name": "chatops"})
    raw = response.context["new_token"]
    assert raw.startswith("opc_")
    token = ApiToken.objects.get()
    assert token.user == bot and raw not in (token.token_hash, token.prefix)
    assert ApiToken.find_active(raw) == token
    assert AuditEntry.objects.filter(action="api_token.create").count() == 1
    assert raw not in str(AuditEntry.objects.get().after)


@pytest.mark.django_db
def test_revoked_token_no_longer_authenticates(client_as, make_user):
    client = client_as(Role.ADMIN)
    raw, prefix, token_hash = ApiToken.generate()
    token = ApiToken.objects.create(user=make_user(Role.SRE), name="x", prefix=prefix, token_hash=token_hash)
    client.post(reverse("api_token_revoke", args=[token.pk]))
    client.post(reverse("api_token_revoke", args=[token.pk]))  # twice: idempotent
    assert ApiToken.find_active(raw) is None
    assert AuditEntry.objects.filter(action="api_token.revoke").count() == 1


@pytest.mark.django_db
def test_token_page_query_count_is_constant(client_as, make_user, django_assert_max_num_queries):
    client = client_as(Role.ADMIN)
    for n in range(30):
        raw, prefix, token_hash = ApiToken.generate()
        ApiToken.objects.create(user=make_user(Role.SRE), name=f"t{n}", prefix=prefix, token_hash=token_hash)
    with django_assert_max_num_queries(8):
        assert client.get(reverse("api_tokens")).status_code == 200


@pytest.mark.django_db
def test_a_token_is_found_with_its_user_and_roles_in_one_statement(make_user, django_assert_num_queries):
    from django.contrib.auth.models import Group

    from opsconsole.roles import has_capability, user_roles

    owner = make_user(Role.SRE, username="alertbot")
    raw, prefix, token_hash = ApiToken.generate()
    ApiToken.objects.create(user=owner, name="am", prefix=prefix, token_hash=token_hash)
    with django_assert_num_queries(1):
        token = ApiToken.find_active(raw)
        assert token.user == owner and token.user.username == "alertbot" and token.name == "am"
        assert user_roles(token.user) == {Role.SRE} and has_capability(token.user, "incident.declare")
    # Roles are read afresh on every lookup: a change applies to the next call.
    owner.groups.set([Group.objects.get(name=Role.VIEWER.value)])
    assert not has_capability(ApiToken.find_active(raw).user, "incident.declare")
    owner.groups.clear()
    assert user_roles(ApiToken.find_active(raw).user) == frozenset()
    assert ApiToken.find_active(raw + "x") is None
    owner.is_active = False
    owner.save()
    assert ApiToken.find_active(raw) is None
