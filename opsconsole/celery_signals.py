"""Celery signal handlers: task metrics, and the request id of the web
request that queued a task, carried in the message headers into the
worker's logs and audit rows."""

import time

from celery import signals

from . import context, metrics

_HEADER = "opsconsole_request_id"
_started: dict[str, float] = {}


@signals.before_task_publish.connect
def _attach_request_id(headers=None, **_kwargs) -> None:
    request_id = context.current_request_id()
    if headers is not None and request_id:
        headers[_HEADER] = request_id


@signals.task_prerun.connect
def _restore_request_id(task_id=None, task=None, **_kwargs) -> None:
    request_id = getattr(task.request, _HEADER, None) if task is not None else None
    if request_id is None and task is not None:
        request_id = (task.request.headers or {}).get(_HEADER) if task.request.headers else None
    context.set_request_id(request_id or f"task-{task_id}")
    _started[task_id] = time.perf_counter()


@signals.task_postrun.connect
def _count_task(task_id=None, task=None, state=None, **_kwargs) -> None:
    started = _started.pop(task_id, None)
    name = getattr(task, "name", "unknown")
    metrics.CELERY_TASKS.labels(task=name, state=state or "UNKNOWN").inc()
    if started is not None:
        metrics.CELERY_TASK_DURATION.labels(task=name).observe(time.perf_counter() - started)
    context.set_request_id(None)
