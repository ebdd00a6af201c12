"""Permission-matrix cases for every notifications URL that changes state."""

from notifications.models import Delivery
from tests.permissions import Case


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
    Case("notifications:replay", "config.edit", setup=_dead_letter),
]
