import datetime

from django.utils import timezone

from oncall.models import Rotation, Shift
from tests.permissions import Case


def _rotation(user):
    rotation, _ = Rotation.objects.get_or_create(name="Matrix rotation")
    return {"pk": rotation.pk}


def _shift_data(kwargs):
    # A fresh, non-overlapping slot for every role the matrix tries.
    start = timezone.localtime() + datetime.timedelta(days=30 + Shift.objects.count())
    return {
        "user": Shift.objects.model.user.field.related_model.objects.first().pk,
        "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (start + datetime.timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M"),
    }


def _shift(user):
    rotation, _ = Rotation.objects.get_or_create(name="Matrix rotation")
    now = timezone.now()
    shift = Shift.objects.create(rotation=rotation, user=user, starts_at=now, ends_at=now + datetime.timedelta(hours=1))
    return {"pk": shift.pk}


CASES = [
    Case("oncall:shift_add", "schedule.edit", setup=_rotation, data=_shift_data),
    Case("oncall:shift_delete", "schedule.edit", setup=_shift),
]
