"""Helpers for the JSON API: bearer-token authentication and JSON errors.

Every API error is a 4xx JSON body {"error": "..."} that names the problem.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .badinput import parse_json_body  # noqa: F401  (the API's body parser; kept importable here)
from .models import ApiToken
from .roles import CAPABILITIES, has_capability


def json_error(message: str, status: int = 400, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


def bearer_token(request: HttpRequest) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def api_token_required(capability: str) -> Callable:
    """Authenticate with a per-user API token and check the user's role.

    401 without a valid token, 403 when the token's user lacks the capability.
    """
    CAPABILITIES[capability]

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            raw = bearer_token(request)
            if raw is None:
                return json_error("missing bearer token (Authorization: Bearer <token>)", 401)
            token = ApiToken.find_active(raw)
            if token is None:
                return json_error("invalid or revoked API token", 401)
            if not has_capability(token.user, capability):
                return json_error(f"this token's user may not do this ({capability})", 403)
            token.mark_used()
            request.user = token.user
            request.api_token = token
            return view(request, *args, **kwargs)

        wrapper.required_capability = capability
        wrapper.api_view = True
        return wrapper

    return decorator
