import datetime

from django.utils import timezone

from oncall.models import Rotation, Shift


def shift(rotation: Rotation, user, start_hours: float, end_hours: float) -> Shift:
    """A materialised shift from now+start_hours to now+end_hours (straight into
    the table, as rotation_materialise would write it) for selector and page tests."""
    now = timezone.now()
    return Shift.objects.create(
        rotation=rotation,
        user=user,
        starts_at=now + datetime.timedelta(hours=start_hours),
        ends_at=now + datetime.timedelta(hours=end_hours),
    )
