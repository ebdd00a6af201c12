from opsconsole.models import ApiToken, User
from tests.permissions import Case


def _token(user):
    raw, prefix, token_hash = ApiToken.generate()
    token = ApiToken.objects.create(user=user, name="bot", prefix=prefix, token_hash=token_hash)
    return {"pk": token.pk}


CASES = [
    Case("profile", "read", data=lambda kw: {"timezone": "Europe/Paris"}),
    Case(
        "api_tokens",
        "users.manage",
        data=lambda kw: {"name": "bot", "owner": User.objects.first().pk},
    ),
    Case("api_token_revoke", "users.manage", setup=_token),
]


def _person(user):
    return {"pk": User.objects.create_user(username="person", email="person@example.com").pk}


CASES += [
    Case(
        "users",
        "users.manage",
        data=lambda kw: {"username": "newbie", "email": "newbie@example.com", "roles": ["SRE"]},
    ),
    Case("user_detail", "users.manage", setup=_person, data=lambda kw: {"roles": ["Viewer"]}),
    Case("user_set_active", "users.manage", setup=_person, data=lambda kw: {"active": "0"}),
    Case("user_reset_mfa", "users.manage", setup=_person),
]
