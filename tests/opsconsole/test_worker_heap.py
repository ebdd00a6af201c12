"""Celery workers freeze their start-up heap (opsconsole/celery.py), so full
garbage collections in big sweeps do not walk Django's and the apps' objects."""

import gc

from celery.signals import worker_init, worker_process_init

from opsconsole.celery import freeze_startup_heap


def test_worker_start_and_each_pool_process_freeze_the_heap():
    for signal in (worker_init, worker_process_init):
        assert any(receiver() is freeze_startup_heap for _key, receiver in signal.receivers), signal.name
    try:
        gc.unfreeze()
        assert gc.get_freeze_count() == 0
        freeze_startup_heap()
        # Everything alive now is out of the collector's generations.
        assert gc.get_freeze_count() > 10_000
        assert gc.get_count()[2] == 0
    finally:
        gc.unfreeze()
