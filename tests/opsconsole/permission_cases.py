from opsconsole.models import ApiToken, Delivery, User
from tests.permissions import Case


def _token(user):
    raw, prefix, token_hash = ApiToken.generate()
    token = ApiToken.objects.create(user=user, name="bot", prefix=prefix, token_hash=token_hash)
    return {"pk": token.pk}


def _dead_letter(user):
    delivery = Delivery.objects.create(
        channel=Delivery.Channel.WEBHOOK,
        target="http://127.0.0.1:9/hook",
        event="incident.declared",
        payload={"text": "x"},
        status=Delivery.Status.DEAD,
        attempts=5,
        last_error="HTTP 500",
    )
    return {"pk": delivery.pk}


CASES = [
    Case("profile", "read", data=lambda kw: {"timezone": "Europe/Paris"}),
    Case(
        "api_tokens",
        "users.manage",
        data=lambda kw: {"name": "bot", "owner": User.objects.first().pk},
    ),
    Case("api_token_revoke", "users.manage", setup=_token),
    Case("notifications:replay", "config.edit", setup=_dead_letter),
]
