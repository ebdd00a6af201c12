"""Redis queue actions: the length of a list, and moving failed jobs back
onto their queue (what `queue:retry` does for list-based job queues).

The Redis is RUNBOOK_REDIS_URL (the monitored application's, not the
console's own); keys must match RUNBOOK_ALLOWED_QUEUES.
"""

from __future__ import annotations

from django.conf import settings

from .actions import ActionError, Reporter, check_queue


def _client():
    import redis

    if not settings.RUNBOOK_REDIS_URL:
        raise ActionError("RUNBOOK_REDIS_URL is not set: no Redis to act on.")
    timeout = float(settings.RUNBOOK_ACTION_TIMEOUT_SECONDS)
    return redis.Redis.from_url(settings.RUNBOOK_REDIS_URL, socket_timeout=timeout, socket_connect_timeout=timeout)


def _length(client, key: str) -> int:
    import redis

    try:
        return client.llen(key)
    except redis.ResponseError as exc:
        raise ActionError(f"{key} is not a list: {exc}") from exc
    except redis.RedisError as exc:
        raise ActionError(f"cannot reach Redis: {type(exc).__name__}") from exc


def queue_length(params: dict, report: Reporter) -> str:
    check_queue(params["queue"])
    with _client() as client:
        length = _length(client, params["queue"])
    report(f"LLEN {params['queue']} = {length}", progress=100)
    return str(length)


def preview_retry(params: dict) -> str:
    check_queue(params["failed_list"])
    check_queue(params["queue"])
    with _client() as client:
        failed, queued = _length(client, params["failed_list"]), _length(client, params["queue"])
    moved = min(failed, params["limit"])
    return f"{params['failed_list']}: {failed} → {failed - moved}; {params['queue']}: {queued} → {queued + moved}"


def retry_failed(params: dict, report: Reporter) -> str:
    """Moves one job at a time with LMOVE (atomic), so a job is never lost or doubled."""
    import redis

    check_queue(params["failed_list"])
    check_queue(params["queue"])
    limit, moved = params["limit"], 0
    with _client() as client:
        try:
            while moved < limit and client.lmove(params["failed_list"], params["queue"], "LEFT", "RIGHT") is not None:
                moved += 1
                if moved % 50 == 0:
                    report(f"{moved} jobs moved", progress=min(99, moved * 100 // limit))
        except redis.RedisError as exc:
            raise ActionError(f"stopped after {moved} jobs: {type(exc).__name__}: {exc}") from exc
    report(f"moved {moved} jobs from {params['failed_list']} to {params['queue']}", progress=100)
    return f"{moved} jobs retried"
