import datetime

from django.utils import timezone

from healthchecks.models import MaintenanceWindow
from opsconsole.models import Service
from tests.healthchecks.factories import make_check, make_service
from tests.permissions import Case


def _check(user):
    return {"pk": make_check(kind="heartbeat", config={"period_seconds": 3600}).pk}


def _form(kwargs):
    service = Service.objects.first() or make_service()
    return {
        "name": f"healthz {timezone.now().timestamp()}",
        "service": service.pk,
        "kind": "tcp",
        "host": "127.0.0.1",
        "port": 5432,
        "interval_seconds": 60,
        "timeout_seconds": 5,
        "consecutive_needed": 2,
        "enabled": "on",
    }


def _window(user):
    now = timezone.now()
    window = MaintenanceWindow.objects.create(
        service=make_service(),
        starts_at=now - datetime.timedelta(hours=1),
        ends_at=now + datetime.timedelta(hours=1),
        reason="upgrade",
    )
    return {"pk": window.pk}


def _window_form(kwargs):
    now = timezone.now()
    return {
        "service": (Service.objects.first() or make_service()).pk,
        "starts_at": now.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (now + datetime.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        "reason": "DB upgrade",
    }


CASES = [
    Case("healthchecks:create", "config.edit", data=_form),
    Case("healthchecks:edit", "config.edit", setup=_check, data=_form),
    Case("healthchecks:run_now", "config.edit", setup=_check),
    Case("healthchecks:heartbeat_rotate", "config.edit", setup=_check),
    Case("healthchecks:maintenance_create", "config.edit", data=_window_form),
    Case("healthchecks:maintenance_end", "config.edit", setup=_window),
]
