"""Bad input never reaches a 500: the shared guards every request passes.

- `InputGuardMiddleware` refuses, before any view runs, what the database cannot
  store or the server will not read: NUL characters in the path, the query string
  or a form (PostgreSQL text cannot hold them) and bodies over
  DATA_UPLOAD_MAX_MEMORY_SIZE (413). JSON endpoints (the API) answer every error
  as JSON {"error": ...}, whatever raised it (405 from require_POST, a 404, a 500).
- `parse_json_body` reads an API body: size, syntax, nesting depth, NaN/Infinity,
  NUL characters and lone surrogates, each refused with a message naming where.
- `form_from_json` validates a JSON object with the same Django form as the page,
  after checking only the JSON types, so that a length limit or a choice lives in
  one place (the form).
- `bad_request`, `server_error`: the handler400/handler500 of the URLconf.
"""

import json
import logging
from collections.abc import Callable
from datetime import UTC
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import BadRequest, RequestDataTooBig, TooManyFieldsSent, ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.template.loader import render_to_string

from . import unavailable

logger = logging.getLogger(__name__)

# Deeper JSON than this is refused before anything walks it recursively (Python's
# own recursion limit made deeply nested bodies a 500).
MAX_JSON_DEPTH = 32


class InvalidInput(BadRequest):
    """A request parameter the view cannot use; answered 400 naming the field."""

    def __init__(self, field: str, message: str, status: int = 400):
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message
        self.status = status


def wants_json(request: HttpRequest) -> bool:
    """JSON endpoints: API views (api_token_required marks them) and anything under /api/."""
    match = getattr(request, "resolver_match", None)
    if match is not None and getattr(match.func, "api_view", False):
        return True
    return request.path_info.startswith("/api/")


def error_response(request: HttpRequest, message: str, status: int, field: str = "") -> HttpResponse:
    """An error as JSON for JSON endpoints, else as the console's own error page."""
    if wants_json(request):
        body: dict[str, Any] = {"error": message}
        if field:
            body["field"] = field
        return JsonResponse(body, status=status)
    html = render_to_string("error.html", {"status": status, "message": message}, request=request)
    return HttpResponse(html, status=status)


def _too_big_message() -> str:
    return f"the request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes"


def as_pk(value) -> int | None:
    """An id written in ASCII digits that fits a bigint, else None. Not
    str.isdigit(): "²" is a digit that int() refuses, and a 30-digit id
    overflows the column (either would be a 500)."""
    text = str(value if value is not None else "")
    return int(text) if text.isascii() and text.isdecimal() and len(text) < 19 else None


def int_param(data, name: str, default: int = 0, minimum: int = 0) -> int:
    """An integer parameter of a query string or form; InvalidInput (400) when it is not one."""
    raw = data.get(name)
    if raw in (None, ""):
        return default
    raw = raw.strip()
    # isdecimal, not isdigit: "²" is a digit that int() refuses.
    if not (raw.isascii() and raw.isdecimal()) or len(raw) > 18 or int(raw) < minimum:
        raise InvalidInput(name, "must be a whole number" + (f" ≥ {minimum}" if minimum else ""))
    return int(raw)


def _nul_field(request: HttpRequest) -> str | None:
    """The first parameter whose name or value holds a NUL character, if any."""
    if "\x00" in request.path_info:
        return "path"
    sources = [request.GET]
    if request.method == "POST" and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        sources.append(request.POST)
    for data in sources:
        for key, values in data.lists():
            if "\x00" in key or any("\x00" in v for v in values):
                return key.replace("\x00", "\\0")
    return None


class InputGuardMiddleware:
    """See the module docstring. Sits before CsrfViewMiddleware, whose process_view
    is the first to read a form body."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if wants_json(request) and response.status_code >= 400 and not _is_json(response):
            # 405 from require_POST, Django's own 400/404/500 pages: JSON clients get JSON.
            reason = response.reason_phrase or "error"
            if response.status_code == 405 and response.has_header("Allow"):
                reason = f"method not allowed (allowed: {response['Allow']})"
            json_response = JsonResponse({"error": reason.lower()}, status=response.status_code)
            for header in ("Allow", "X-Request-ID"):
                if response.has_header(header):
                    json_response[header] = response[header]
            return json_response
        if response.status_code == 405 and not getattr(response, "streaming", False) and not response.content:
            # require_POST's bare 405: the console's own page instead of a blank one.
            page = error_response(request, f"this address does not take {request.method} requests", 405)
            page["Allow"] = response.get("Allow", "")
            return page
        return response

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response(request, "Content-Length is not a number", 400, field="Content-Length")
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        # Multipart bodies may carry files, which Django limits separately.
        if limit is not None and length > limit and request.content_type != "multipart/form-data":
            return error_response(request, _too_big_message(), 413)
        try:
            field = _nul_field(request)
        except RequestDataTooBig:
            return error_response(request, _too_big_message(), 413)
        except (TooManyFieldsSent, MultiPartParserError) as exc:
            return error_response(request, str(exc) or "the form could not be read", 400)
        if field:
            message = f"`{field}` contains a NUL character, which cannot be stored"
            return error_response(request, message, 400, field=field)
        return None

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, RequestDataTooBig):
            return error_response(request, _too_big_message(), 413)
        if isinstance(exception, InvalidInput):
            return error_response(request, str(exception), exception.status, field=exception.field)
        return None


def _is_json(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").startswith("application/json")


class DateTimeField(forms.DateTimeField):
    """A form date-time that exists in UTC too. `9999-12-31T23:59:59-23:59` parses,
    but is year 10000 in UTC: PostgreSQL stores it and every later read fails."""

    def to_python(self, value):
        result = super().to_python(value)
        if result is not None:
            try:
                in_utc = result.astimezone(UTC)
            except (OverflowError, ValueError):
                in_utc = None
            if in_utc is None or not 1 < in_utc.year < 9999:
                raise ValidationError("Enter a date between the years 2 and 9998.", code="out_of_range")
        return result


# --- URLconf handlers ------------------------------------------------------------------


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    message = str(exception) if isinstance(exception, InvalidInput) else "the request could not be understood"
    return error_response(request, message, 400, field=getattr(exception, "field", ""))


def server_error(request: HttpRequest) -> HttpResponse:
    if unavailable.current_exception_is_database_unavailable():
        # Saturated or down, not broken: 503 + Retry-After (opsconsole.unavailable).
        return unavailable.unavailable_response(request, json=wants_json(request))
    if wants_json(request):
        return JsonResponse({"error": "server error (logged)"}, status=500)
    # No template context processors: whatever broke may be what they need.
    return HttpResponse(render_to_string("500.html"), status=500)


# --- JSON bodies -------------------------------------------------------------------------


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _check_strings(value: Any) -> tuple[str, str] | None:
    """Walk a parsed JSON document without recursion: (path, problem) of the first
    string or key that PostgreSQL cannot store, or that nests too deep."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return path or "body", f"nests deeper than {MAX_JSON_DEPTH} levels"
        if isinstance(node, str):
            problem = _string_problem(node)
            if problem:
                return path or "body", problem
        elif isinstance(node, dict):
            for key, item in node.items():
                child = f"{path}.{key}" if path else key
                problem = _string_problem(key)
                if problem:
                    return child.replace("\x00", "\\0"), "the key " + problem
                stack.append((item, child, depth + 1))
        elif isinstance(node, list):
            stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(node))
    return None


def _string_problem(text: str) -> str:
    if "\x00" in text:
        return "contains a NUL character, which cannot be stored"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (invalid Unicode)"
    return ""


def parse_json_body(request: HttpRequest) -> tuple[Any, JsonResponse | None]:
    """Return (data, None), or (None, a 4xx JSON response saying what is wrong)."""
    content_type = request.content_type or ""
    if content_type != "application/json":
        return None, JsonResponse({"error": "send a JSON body with Content-Type: application/json"}, status=415)
    try:
        body = request.body
    except RequestDataTooBig:
        return None, JsonResponse({"error": _too_big_message()}, status=413)
    try:
        data = json.loads(body or b"null", parse_constant=_refuse_constant)
    except RecursionError:
        return None, JsonResponse({"error": f"the body nests deeper than {MAX_JSON_DEPTH} levels"}, status=400)
    except (ValueError, UnicodeDecodeError) as exc:
        return None, JsonResponse({"error": f"the body is not valid JSON: {exc}"}, status=400)
    problem = _check_strings(data)
    if problem:
        path, message = problem
        return None, JsonResponse({"error": f"`{path}` {message}", "field": path}, status=400)
    return data, None


# --- JSON object → the page's form ---------------------------------------------------------


def _json_type_error(field: forms.Field, value: Any) -> str:
    """The JSON type a form field takes; "" when `value` has it."""
    if isinstance(field, forms.BooleanField):
        return "" if isinstance(value, bool) else "must be true or false"
    if isinstance(field, forms.ModelMultipleChoiceField | forms.MultipleChoiceField):
        ok = isinstance(value, list) and all(isinstance(v, str | int) and not isinstance(v, bool) for v in value)
        return "" if ok else "must be a list of strings or numbers"
    if isinstance(field, forms.IntegerField | forms.ModelChoiceField | forms.TypedChoiceField):
        ok = isinstance(value, str | int) and not isinstance(value, bool)
        return "" if ok else "must be a number or a string"
    return "" if isinstance(value, str) else "must be a string"


def _form_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "on" if value else ""
    if isinstance(value, list):
        return [str(v) for v in value]
    return str(value)


def form_from_json(form_class: type[forms.Form], data: Any, **kwargs) -> tuple[forms.Form | None, JsonResponse | None]:
    """Bind the page's form to a JSON object; (form, None) when it is valid,
    else (None, a 400 naming every field that is wrong)."""
    if not isinstance(data, dict):
        return None, JsonResponse({"error": "send a JSON object"}, status=400)
    probe = form_class(**kwargs)
    errors: dict[str, list[str]] = {}
    form_data: dict[str, Any] = {}
    for key, value in data.items():
        field = probe.fields.get(key)
        if field is None:
            errors[key] = [f"unknown field (expected one of: {', '.join(probe.fields)})"]
            continue
        if value is None:
            continue
        problem = _json_type_error(field, value)
        if problem:
            errors[key] = [problem]
        else:
            form_data[key] = _form_value(value)
    form = None
    if not errors:
        form = form_class(data=form_data, **kwargs)
        if not form.is_valid():
            errors = {key: [str(m) for m in messages] for key, messages in form.errors.items()}
    if errors:
        text = "; ".join(f"{key}: {' '.join(messages)}" for key, messages in errors.items())
        return None, JsonResponse({"error": text, "fields": errors}, status=400)
    return form, None
