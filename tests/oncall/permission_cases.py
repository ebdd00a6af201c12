import datetime

from django.utils import timezone

from oncall.models import Override, Rotation
from opsconsole.models import User
from tests.permissions import Case


def _rotation(user):
    rotation, _ = Rotation.objects.get_or_create(name="Matrix rotation")
    return {"pk": rotation.pk}


def _override_data(kwargs):
    # A fresh, non-overlapping range for every role the matrix tries.
    start = timezone.localtime() + datetime.timedelta(days=30 + Override.objects.count())
    return {
        "user": User.objects.filter(is_active=True).first().pk,
        "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (start + datetime.timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M"),
        "kind": "swap",
    }


def _override(user):
    rotation, _ = Rotation.objects.get_or_create(name="Matrix rotation")
    start = timezone.now() + datetime.timedelta(days=60 + Override.objects.count())
    override = Override.objects.create(
        rotation=rotation, user=user, starts_at=start, ends_at=start + datetime.timedelta(hours=1)
    )
    return {"pk": override.pk}


def _settings_data(kwargs):
    return {
        "shift_length": "weekly",
        "custom_hours": "12",
        "handoff_time": "09:00",
        "timezone": "Europe/London",
        "start_date": "2026-01-05",
        "members": "",
    }


CASES = [
    Case("oncall:override_add", "schedule.edit", setup=_rotation, data=_override_data),
    Case("oncall:override_delete", "schedule.edit", setup=_override),
    Case("oncall:rotation_edit", "schedule.edit", setup=_rotation, data=_settings_data),
    Case("oncall:my_feed", "read", data=lambda kwargs: {"action": "create"}),
]


def _handoff_new_data(kwargs):
    rotation, _ = Rotation.objects.get_or_create(name="Matrix rotation")
    return {"rotation": rotation.pk, "recent_changes": "matrix"}


def _handoff(user):
    from oncall.models import Handoff

    rotation, _ = Rotation.objects.get_or_create(name="Matrix rotation")
    outgoing, _ = User.objects.get_or_create(username="matrix-outgoing")
    now = timezone.now()
    handoff = Handoff.objects.create(
        rotation=rotation, outgoing=outgoing, incoming=user, period_start=now, period_end=now, submitted_at=now
    )
    return {"pk": handoff.pk}


def _questioned_handoff(user):
    """`user` wrote the handoff; someone else asked a question: may `user` answer?"""
    from oncall.models import Handoff, HandoffMessage

    rotation, _ = Rotation.objects.get_or_create(name="Matrix rotation")
    asker, _ = User.objects.get_or_create(username="matrix-incoming")
    now = timezone.now()
    handoff = Handoff.objects.create(
        rotation=rotation,
        outgoing=user,
        incoming=asker,
        period_start=now,
        period_end=now,
        submitted_at=now,
        status=Handoff.Status.QUESTIONED,
        question="Is the disk alert real?",
        questioned_at=now,
        questioned_by=asker,
    )
    HandoffMessage.objects.create(handoff=handoff, kind="question", author=asker, text=handoff.question, created_at=now)
    return {"pk": handoff.pk}


CASES += [
    Case("oncall:handoff_new", "handoff.write", data=_handoff_new_data),
    Case(
        "oncall:handoff_reply",
        "handoff.write",
        setup=_questioned_handoff,
        data=lambda kwargs: {"answer": "Yes: the volume grows 2 GB a day."},
    ),
    Case("oncall:handoff_answer", "handoff.write", setup=_handoff, data=lambda kwargs: {"action": "acknowledge"}),
]


def _policy_data(kwargs):
    from oncall.models import EscalationPolicy
    from tests.oncall.factories import policy_post

    rotation, _ = Rotation.objects.get_or_create(name="Matrix rotation")
    prefix = f"p{kwargs['pk']}" if "pk" in kwargs else "pnew"
    return policy_post(
        prefix,
        name=f"Matrix policy {EscalationPolicy.objects.count()}",
        levels=[{"name": "L1", "wait_minutes": 15, "rotation": rotation.pk}],
    )


def _policy(user):
    from oncall.models import EscalationPolicy

    Rotation.objects.get_or_create(name="Matrix rotation")
    policy = EscalationPolicy.objects.create(name=f"Matrix policy {EscalationPolicy.objects.count()}-x")
    return {"pk": policy.pk}


def _policy_add_setup(user):
    Rotation.objects.get_or_create(name="Matrix rotation")
    return {}


CASES += [
    Case("oncall:policy_add", "schedule.edit", setup=_policy_add_setup, data=_policy_data),
    Case("oncall:policy_save", "schedule.edit", setup=_policy, data=_policy_data),
]
