"""Per-request (or per-task) context read by logging and the audit log.

Context variables work for threads, asyncio and Celery tasks alike.
"""

import re
import uuid
from contextvars import ContextVar
from typing import Any

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
_request: ContextVar[Any] = ContextVar("request", default=None)

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def new_request_id(incoming: str | None = None) -> str:
    """Keep a caller's well-formed X-Request-ID; otherwise make one."""
    if incoming and _VALID_REQUEST_ID.match(incoming):
        return incoming
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(value: str | None):
    return _request_id.set(value)


def reset_request_id(token) -> None:
    _request_id.reset(token)


def set_request(request: Any):
    return _request.set(request)


def reset_request(token) -> None:
    _request.reset(token)


def current_user_id() -> int | None:
    """The signed-in user's id, only if the request already loaded the user.

    Logging must not trigger a session and user query of its own.
    """
    request = _request.get()
    user = getattr(request, "_cached_user", None) if request is not None else None
    if user is not None and user.is_authenticated:
        return user.pk
    return None
