"""The Celery application: settings come from Django's (CELERY_ prefix)."""

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
    """Before the pool forks (worker_init) and again in each child (whatever it
    loaded since): opsconsole.startup.freeze_startup_objects. Without it a full
    collection walked every start-up object, about 200 ms in the middle of an
    escalation sweep paging 1,000 levels (bench/oncall_bench.py); the frozen
    objects are also not written to by the collector, so forked children keep
    sharing their pages."""
    from opsconsole.startup import freeze_startup_objects

    freeze_startup_objects()
