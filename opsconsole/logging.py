"""JSON logs, one line per event, with the request (or task) context.

Every line has `timestamp` (ISO 8601, UTC), `level`, `logger`, `message`,
`request_id` and `user_id`, then any `extra=` fields of the call; an
exception adds `exc_info` (the traceback, newlines escaped: still one line).
"""

import logging
from collections.abc import Mapping

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _BaseJsonFormatter

from . import context


def _user_id(request) -> int | None:
    user = getattr(request, "_cached_user", None) if request is not None else None
    return user.pk if user is not None and user.is_authenticated else None


class ContextFilter(logging.Filter):
    """Add request_id and user_id from the current request or Celery task.

    Django logs some events (e.g. "Not Found") after the middleware has
    returned; they carry the request itself (`record.request`), whose id the
    RequestIdMiddleware kept on it. Values given with `extra=` win.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        if getattr(record, "request_id", None) is None:
            record.request_id = context.current_request_id() or getattr(request, "request_id", None)
        if getattr(record, "user_id", None) is None:
            record.user_id = context.current_user_id() or _user_id(request)
        return True


class JsonFormatter(_BaseJsonFormatter):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("fmt", "%(timestamp)s %(levelname)s %(name)s %(message)s %(request_id)s %(user_id)s")
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", True)
        # Django's `request` extra is an object, not data: its id is logged instead.
        kwargs.setdefault("reserved_attrs", [*RESERVED_ATTRS, "request"])
        super().__init__(*args, **kwargs)


class GunicornAccessFilter(logging.Filter):
    """gunicorn's access log as JSON fields: method, path, status, duration and
    the request id the console echoed in X-Request-ID."""

    def filter(self, record: logging.LogRecord) -> bool:
        atoms = record.args if isinstance(record.args, Mapping) else None
        if atoms is not None:
            request_id = atoms["{x-request-id}o"]  # gunicorn's SafeAtoms: "-" when missing
            record.request_id = None if request_id == "-" else request_id
            record.user_id = None
            record.method = atoms["m"]
            record.path = atoms["U"]
            record.status = int(atoms["s"])
            record.duration_seconds = float(atoms["L"])
            record.remote_addr = atoms["h"]
        return True
