"""Celery signal handlers: task metrics, and the request id of the web
request that queued a task, carried in the message headers into the
worker's logs and audit rows."""

import time
from contextvars import Token

from celery import signals

from . import context, metrics

_HEADER = "opsconsole_request_id"
# task id -> (context token to restore, start time); prerun and postrun of
# one task run in the same thread.
_running: dict[str, tuple[Token, float]] = {}


@signals.before_task_publish.connect
def _attach_request_id(headers=None, **_kwargs) -> None:
    request_id = context.current_request_id()
    if headers is not None and request_id:
        headers[_HEADER] = request_id


def _queued_by(task) -> str | None:
    """The request id from the message: Celery (protocol 2) puts custom
    headers on task.request as attributes; older paths keep them in
    task.request.headers."""
    if task is None:
        return None
    request_id = getattr(task.request, _HEADER, None)
    if request_id is None:
        request_id = (getattr(task.request, "headers", None) or {}).get(_HEADER)
    return request_id


@signals.task_prerun.connect
def _restore_request_id(task_id=None, task=None, **_kwargs) -> None:
    # An eager task (tests, CELERY_TASK_ALWAYS_EAGER) runs inside the request
    # and simply keeps its id; a worker's task gets the one from the message.
    request_id = _queued_by(task) or context.current_request_id() or f"task-{task_id}"
    _running[task_id] = (context.set_request_id(request_id), time.perf_counter())


@signals.task_postrun.connect
def _count_task(task_id=None, task=None, state=None, **_kwargs) -> None:
    name = getattr(task, "name", "unknown")
    metrics.CELERY_TASKS.labels(task=name, state=state or "UNKNOWN").inc()
    token, started = _running.pop(task_id, (None, None))
    if started is not None:
        metrics.CELERY_TASK_DURATION.labels(task=name).observe(time.perf_counter() - started)
    if token is not None:
        # Restore, not clear: an eager task must not wipe its request's id.
        context.reset_request_id(token)


@signals.beat_init.connect
def _hold_the_beat_lock(**_kwargs) -> None:
    """Before beat's first tick: wait until no other beat runs (beat_lock.py)."""
    from . import beat_lock

    beat_lock.hold_for_this_beat()


@signals.worker_ready.connect
def _serve_worker_metrics(**_kwargs) -> None:
    """The worker's own /metrics on CELERY_METRICS_PORT (Kubernetes scrapes each pod)."""
    from django.conf import settings

    if settings.CELERY_METRICS_PORT:
        from . import worker_metrics

        worker_metrics.serve(settings.CELERY_METRICS_PORT)
