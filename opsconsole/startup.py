"""What a server process does once it has started, before it serves.

`freeze_startup_objects()` loads what the first request would load anyway
(every app's URLs and views) and moves everything alive then out of the
garbage collector's sight (gc.freeze): a full collection otherwise walks
every module, class and function object of Django and the apps again and
again, on the request that happens to trigger it. Called by gunicorn's
post_worker_init (gunicorn.conf.py) and by Celery's worker_init and
worker_process_init (opsconsole/celery.py). Objects made later are collected as before.
"""

import gc


def freeze_startup_objects() -> None:
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018  # imports every app's urls and views now, not on a request
    gc.collect()
    gc.freeze()
