"""The database is saturated or down: answer 503 with Retry-After, never 500.

Connections come from a bounded pool (settings: DATABASE_POOL_*). When every
pooled connection is busy for DATABASE_POOL_TIMEOUT seconds, or PostgreSQL
does not answer (restarting, failing over, out of connections), Django raises
OperationalError (psycopg_pool.PoolTimeout is one) or InterfaceError (a
connection the server closed). That is not a bug in the request: the caller
should retry, and Alertmanager, chat bots and browsers all honour
Retry-After. The URLconf's handler500 (opsconsole.badinput.server_error)
asks here first, so this covers middleware (sessions, the user) as well as
views.
"""

import logging
import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger("opsconsole.unavailable")

RETRY_AFTER_SECONDS = 5

PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>Busy · Ops Console</title><meta http-equiv="refresh" content="{seconds}"></head>
<body><h1>The console's database is busy or unreachable</h1>
<p>Nothing was saved by this request. This page tries again in {seconds} seconds.</p></body></html>
"""


def database_unavailable(exc: BaseException | None) -> bool:
    return isinstance(exc, (OperationalError, InterfaceError))


def current_exception_is_database_unavailable() -> bool:
    """Called from handler500, which runs inside Django's `except` block."""
    return database_unavailable(sys.exc_info()[1])


def unavailable_response(request: HttpRequest, json: bool) -> HttpResponse:
    if json:
        response: HttpResponse = JsonResponse(
            {"error": "the database is busy or unreachable; retry later", "retry_after": RETRY_AFTER_SECONDS},
            status=503,
        )
    else:
        response = HttpResponse(PAGE.format(seconds=RETRY_AFTER_SECONDS), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response
