"""The Celery application: settings come from Django's (CELERY_ prefix)."""

import gc
import os

from celery import Celery
from celery.signals import worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconsole.settings")

app = Celery("opsconsole")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
@worker_process_init.connect
def freeze_startup_heap(**_kwargs) -> None:
    """Move everything loaded at start (Django, the apps, their modules) out of
    the garbage collector's reach. A full collection otherwise walks all of it:
    about 200 ms in the middle of an escalation sweep that pages 1,000 levels
    (bench/oncall_bench.py), on objects that live as long as the process.
    Before the pool forks (worker_init) and again in each child (whatever it
    loaded since); the frozen objects are also not written to by the collector,
    so forked children keep sharing their pages."""
    gc.collect()
    gc.freeze()
