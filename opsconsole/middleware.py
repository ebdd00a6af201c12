import time
import zoneinfo

import csp.constants
import csp.middleware
import csp.utils
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from . import context, metrics


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


class CSPMiddleware(csp.middleware.CSPMiddleware):
    """django-csp's middleware with the policy text built once per process.

    django-csp builds both headers from the settings on every response
    (a tenth of a millisecond of CPU, paid by every request). The console
    uses no nonces and no per-view policy changes, so the text is the same
    for every response and is kept after the first build. A response that
    does carry a change (`@csp_update`, `@csp_exempt`…) or a request that
    asked for a nonce gets django-csp's own handling, unchanged.
    """

    _PER_RESPONSE = (
        "_csp_config",
        "_csp_update",
        "_csp_replace",
        "_csp_exempt",
        "_csp_config_ro",
        "_csp_update_ro",
        "_csp_replace_ro",
        "_csp_exempt_ro",
    )

    def __init__(self, get_response) -> None:
        super().__init__(get_response)
        self._headers: list[tuple[str, str, tuple[str, ...]]] | None = None

    def _static_headers(self) -> list[tuple[str, str, tuple[str, ...]]]:
        if self._headers is None:
            headers = []
            for header, setting, report_only in (
                (csp.constants.HEADER, "CONTENT_SECURITY_POLICY", False),
                (csp.constants.HEADER_REPORT_ONLY, "CONTENT_SECURITY_POLICY_REPORT_ONLY", True),
            ):
                text = csp.utils.build_policy(report_only=report_only)
                prefixes = (getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES") or ()
                if text:
                    headers.append((header, text, tuple(prefixes)))
            self._headers = headers
        return self._headers

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if getattr(request, "_csp_nonce", None) is not None or any(
            getattr(response, name, None) is not None for name in self._PER_RESPONSE
        ):
            return super().process_response(request, response)
        if response.status_code in (500, 404) and settings.DEBUG:
            return response  # django-csp leaves Django's debug pages alone
        for header, text, prefixes in self._static_headers():
            if header not in response and not request.path_info.startswith(prefixes):
                response[header] = text
        # As django-csp does: a nonce asked for after the header is written is an error.
        request.csp_nonce = csp.middleware.CheckableLazyObject(self._csp_nonce_post_response)
        return response
