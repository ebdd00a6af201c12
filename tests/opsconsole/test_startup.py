"""gunicorn and Celery workers freeze their startup objects out of the GC's view (opsconsole/startup.py)."""

import gc
import os
import runpy
from pathlib import Path
from unittest import mock

from celery.signals import worker_init, worker_process_init
from django.conf import settings

from opsconsole.celery import freeze_startup_heap


def test_gunicorn_workers_freeze_their_startup_objects_with_the_urls_loaded():
    with mock.patch.dict(os.environ):  # the config sets PROMETHEUS_MULTIPROC_DIR for gunicorn
        conf = runpy.run_path(str(Path(settings.BASE_DIR) / "gunicorn.conf.py"))
    gc.unfreeze()
    try:
        conf["post_worker_init"](worker=None)
        frozen = gc.get_freeze_count()
        assert gc.get_count()[2] == 0
    finally:
        gc.unfreeze()
    # Everything alive after Django's setup and the URLconf's imports: far more than a few objects.
    assert frozen > 50_000


def test_celery_workers_freeze_before_the_pool_forks_and_in_each_child():
    for signal in (worker_init, worker_process_init):
        assert any(receiver() is freeze_startup_heap for _key, receiver in signal.receivers), signal.name
