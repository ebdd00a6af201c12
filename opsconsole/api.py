"""Helpers for the JSON API: bearer-token authentication and JSON errors.

Every API error is a 4xx JSON body {"error": "..."} that names the problem.
"""

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .models import ApiToken
from .roles import CAPABILITIES, has_capability


def json_error(message: str, status: int = 400, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


def bearer_token(request: HttpRequest) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def parse_json_body(request: HttpRequest) -> tuple[Any, JsonResponse | None]:
    """Return (data, None), or (None, a 400 response saying what is wrong)."""
    content_type = request.content_type or ""
    if content_type != "application/json":
        return None, json_error("send a JSON body with Content-Type: application/json", 415)
    try:
        return json.loads(request.body or b"null"), None
    except (ValueError, UnicodeDecodeError) as exc:
        return None, json_error(f"the body is not valid JSON: {exc}")


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
