"""Every task has an explicit route, and the worker started by `make run`
(Procfile) and docker-compose consumes every queue that routes name."""

import re
from fnmatch import fnmatch
from pathlib import Path

from django.conf import settings

from opsconsole.celery import app


def _project_tasks() -> list[str]:
    app.loader.import_default_modules()
    return sorted(name for name in app.tasks if not name.startswith("celery."))


def _route_queue(task_name: str) -> str | None:
    for pattern, route in settings.CELERY_TASK_ROUTES.items():
        if fnmatch(task_name, pattern):
            return route["queue"]
    return None


def test_every_task_has_an_explicit_route():
    unrouted = [name for name in _project_tasks() if _route_queue(name) is None]
    assert not unrouted, f"tasks without a CELERY_TASK_ROUTES entry: {unrouted}"


def test_the_procfile_worker_consumes_every_routed_queue():
    procfile = (Path(settings.BASE_DIR) / "Procfile").read_text()
    match = re.search(r"^worker:.*--queues\s+(\S+)", procfile, re.MULTILINE)
    assert match, "the Procfile worker must name its queues"
    consumed = set(match.group(1).split(","))
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    assert routed <= consumed, f"queues nobody consumes: {routed - consumed}"


def test_beat_schedule_names_real_tasks():
    tasks = set(_project_tasks())
    unknown = [entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values() if entry["task"] not in tasks]
    assert not unknown, f"beat schedules unknown tasks: {unknown}"
