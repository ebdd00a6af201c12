"""JSON logs, one line per event, with the request (or task) context."""

import logging
from collections.abc import Mapping

from pythonjsonlogger.json import JsonFormatter as _BaseJsonFormatter

from . import context


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = context.current_request_id()
        record.user_id = context.current_user_id()
        return True


class JsonFormatter(_BaseJsonFormatter):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault(
            "fmt", "%(timestamp)s %(levelname)s %(name)s %(message)s %(request_id)s %(user_id)s"
        )
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", True)
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
