"""Server processes freeze their startup objects out of the GC's view (opsconsole/startup.py)."""

import gc
import os
import runpy
from pathlib import Path
from unittest import mock

from django.conf import settings


def test_gunicorn_workers_and_celery_processes_freeze_their_startup_objects():
    from celery import signals

    from opsconsole import celery_signals

    with mock.patch.dict(os.environ):  # the config sets PROMETHEUS_MULTIPROC_DIR for gunicorn
        conf = runpy.run_path(str(Path(settings.BASE_DIR) / "gunicorn.conf.py"))
    gc.unfreeze()
    try:
        conf["post_worker_init"](worker=None)
        after_gunicorn = gc.get_freeze_count()
        gc.unfreeze()
        signals.worker_process_init.send(sender=None)
        after_celery = gc.get_freeze_count()
    finally:
        gc.unfreeze()
    # Everything alive after Django's setup and the URLconf's imports: far more than a few objects.
    assert after_gunicorn > 50_000 and after_celery > 50_000
    assert callable(celery_signals._freeze_startup_objects)
