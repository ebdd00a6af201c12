import time
import zoneinfo

from django.contrib.auth import middleware as auth_middleware
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from . import auth_backends, context, metrics


class RequestIdMiddleware:
    """Take X-Request-ID from the caller (or make one), expose it to logs and
    the audit log, and echo it in the response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = context.new_request_id(request.headers.get("X-Request-ID"))
        request.request_id = request_id
        id_token = context.set_request_id(request_id)
        request_token = context.set_request(request)
        try:
            response = self.get_response(request)
        finally:
            context.reset_request(request_token)
            context.reset_request_id(id_token)
        response["X-Request-ID"] = request_id
        return response


class MetricsMiddleware:
    """http_requests_total and http_request_duration_seconds, labelled by the
    URL pattern's name (never the raw path, which would explode the series)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = match.view_name if match is not None and match.view_name else "<unresolved>"
        metrics.observe_request(request.method, view, response.status_code, time.perf_counter() - started)
        return response


class UserTimezoneMiddleware:
    """Show times in the signed-in user's timezone (profile setting)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated and user.timezone:
            try:
                timezone.activate(zoneinfo.ZoneInfo(user.timezone))
            except zoneinfo.ZoneInfoNotFoundError:
                timezone.deactivate()
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            # The thread serves other requests (and tests) next: never leave
            # one user's timezone active for whoever comes after.
            timezone.deactivate()


class AuthenticationMiddleware(auth_middleware.AuthenticationMiddleware):
    """Django's, handing the request's session to the authentication backend
    while Django's get_user runs: the session store reads the user with the
    session (opsconsole/sessions.py), one round trip instead of two."""

    def process_request(self, request: HttpRequest) -> None:
        super().process_request(request)
        request.user = SimpleLazyObject(lambda: _get_user(request))


def _get_user(request: HttpRequest):
    token = auth_backends.current_session.set(request.session)
    try:
        return auth_middleware.get_user(request)  # Django's: auth.get_user, kept on the request
    finally:
        auth_backends.current_session.reset(token)
