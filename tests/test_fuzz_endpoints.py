"""Bad input never reaches a 500 (issue #8), as properties over every endpoint.

The endpoints come from the URL resolver, like tests/test_permission_matrix.py:
every URL that changes state has a permission-matrix Case (a valid request), and
this test mutates that request with hypothesis — arbitrary strings (NUL, lone
surrogates, 100 KB), numbers, nesting and wrong types — and checks that

- the answer is never a 5xx;
- a refused request (4xx, a form re-shown with errors, an error message) wrote
  nothing: the transaction's inserted/updated/deleted row counts
  (pg_stat_xact_user_tables) do not move, audit log included;
- a refused JSON request answers JSON that names the field it refused.

Read pages get arbitrary query strings and must write nothing at all. A view
that is neither a Case nor read-only nor listed below fails
test_every_endpoint_is_fuzzed, so a new endpoint cannot be forgotten.

Run time: the "default" profile (make test) sends FUZZ_EXAMPLES requests per
endpoint; HYPOTHESIS_PROFILE=thorough sends 300 (run it on demand).
"""

import json
import os
import uuid

import pytest
from django.contrib.messages import constants as message_levels
from django.contrib.messages import get_messages
from django.db import connection, transaction
from django.forms import BaseForm, BaseFormSet
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opsconsole.models import ApiToken
from opsconsole.roles import Role
from tests.test_permission_matrix import CASES

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
# too_slow: each example is a whole request against PostgreSQL, slower than
# hypothesis expects of a data generator. Deadline off: request time varies with
# the shared machine's load, and a slow example is not a wrong one.
settings.register_profile(
    "default",
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# Our apps' views; Django's admin and allauth's sign-in pages are theirs to test.
OWN_MODULES = (
    "opsconsole",
    "incidents",
    "checklists",
    "healthchecks",
    "oncall",
    "runbooks",
    "notifications",
    "reviews",
)
# Endpoints that take input but no role: (url_name, method, kwargs builder, valid data).
PUBLIC_INPUT = {
    "healthchecks:ping",
    "healthchecks:ping_fail",
}
# Endpoints without a role that read no input worth fuzzing (probes, scrapes, a redirect).
# The on-call calendar feed reads only its token from the path (an unknown one is a 404).
NO_INPUT = {"livez", "readyz", "healthz", "metrics", "favicon.ico", "oncall:feed"}

# Bookkeeping rows a request may write even when it refuses the input: the
# token's last use (written by authentication, before the view) and sessions.
BOOKKEEPING_TABLES = ("opsconsole_apitoken", "opsconsole_session")

# Parameters views read outside their forms (cursors, filters, htmx extras).
PARAMETER_NAMES = [
    *("q", "status", "severity", "service", "commander", "date_from", "date_to", "page", "kind", "since"),
    *("after", "before", "state", "check", "correct", "breached", "tz", "next", "starred", "confirm"),
    *("field", "multiple"),
]
EDGE_STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "²",
    "٣",
    "-1",
    "0",
    "1e309",
    "NaN",
    "Infinity",
    "9" * 40,
    "-" + "9" * 30,
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:59",
    "2026-13-45T25:61",
    "9999-12-31",
    "http://[::1",
    "http://[::1]:99999/",
    "//evil.example",
    "javascript:alert(1)",
    "../../etc/passwd",
    "true",
    "false",
    "on",
    "null",
    "[]",
    "{}",
    "<script>alert(1)</script>",
    "x" * 100_000,
    "é" * 50_000,
    "\u202e",
    "\r\n\r\n",
    "%00",
    "' OR 1=1 --",
]


def _text(surrogates: bool):
    exclude = () if surrogates else ("Cs",)
    return st.one_of(
        st.sampled_from(EDGE_STRINGS),
        st.text(st.characters(exclude_categories=exclude), max_size=30),
        st.text(st.characters(exclude_categories=exclude, max_codepoint=0x7F), max_size=12),
    )


def _nested(depth: int):
    value: object = "x"
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    _text(surrogates=True),
)
# Values that broke something once, or are known to break parsers: drawn as often as
# all the arbitrary ones together, so that a few examples per endpoint meet them.
EDGE_JSON = st.sampled_from(
    [*EDGE_STRINGS, "\ud800", "a\udfffb", [], {}, [5], ["²"], 5, -1, 0, 2**70, 1.5, True, False, None]
)
JSON_VALUES = st.one_of(
    EDGE_JSON,
    EDGE_JSON,
    JSON_SCALARS,
    st.recursive(
        JSON_SCALARS,
        lambda children: st.lists(children, max_size=3) | st.dictionaries(_text(True), children, max_size=3),
        max_leaves=8,
    ),
    st.integers(min_value=20, max_value=300).map(_nested),
)
# A browser can only send strings (and repeated fields); invalid UTF-8 is
# decoded with replacement characters by Django, so no lone surrogates here.
FORM_VALUES = st.one_of(
    st.sampled_from(EDGE_STRINGS),
    _text(surrogates=False),
    st.integers().map(str),
    st.lists(_text(surrogates=False), min_size=2, max_size=3),
)


# --- enumerating the endpoints ---------------------------------------------------------------


def _views(resolver=None, namespace=""):
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            ns = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _views(pattern, ns)
        elif isinstance(pattern, URLPattern):
            module = getattr(pattern.callback, "__module__", "") or ""
            if module.split(".")[0] in OWN_MODULES or not module:
                yield f"{namespace}{pattern.name}" if pattern.name else repr(pattern), pattern


def _capability(pattern) -> str | None:
    return getattr(pattern.callback, "required_capability", None)


CASE_NAMES = {case.url_name for case in CASES}
READ_VIEWS = sorted(name for name, p in _views() if _capability(p) == "read" and name not in CASE_NAMES)


def test_every_endpoint_is_fuzzed():
    """A view is fuzzed as a POST (its permission-matrix Case), as a read page
    (arbitrary query strings), or listed here with a reason; else this fails."""
    unknown = [
        name
        for name, pattern in _views()
        if name not in CASE_NAMES and _capability(pattern) != "read" and name not in PUBLIC_INPUT | NO_INPUT
    ]
    assert not unknown, (
        f"endpoints the bad-input fuzzing does not cover: {unknown}. Give each a permission-matrix "
        "Case (tests/<app>/permission_cases.py), or list it in tests/test_fuzz_endpoints.py."
    )


def test_every_state_changing_case_is_fuzzed():
    # Matrix cases are the fuzzing's seeds: each must resolve to one of our views.
    own = {name for name, _ in _views()}
    assert CASE_NAMES <= own, CASE_NAMES - own


# --- measuring writes and refusals --------------------------------------------------------------


def _writes() -> int:
    """Rows inserted, updated or deleted so far in this transaction (all tables but bookkeeping)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_xact_user_tables "
            "WHERE relname <> ALL(%s)",
            [list(BOOKKEEPING_TABLES)],
        )
        return int(cursor.fetchone()[0])


def _forms_with_errors(response) -> list:
    found = []
    for context in response.context or []:
        for value in context.flatten().values() if hasattr(context, "flatten") else context.values():
            if isinstance(value, BaseForm | BaseFormSet) and value.is_bound and not value.is_valid():
                found.append(value)
    return found


def _error_messages(response) -> list[str]:
    request = getattr(response, "wsgi_request", None)
    if request is None:
        return []
    return [str(m) for m in get_messages(request) if m.level >= message_levels.ERROR]


def _form_error_fields(form) -> set[str]:
    if isinstance(form, BaseFormSet):
        fields = {"__all__"} if form.non_form_errors() else set()
        for sub in form.forms:
            fields |= {f"{sub.prefix}-{name}" if name != "__all__" else "__all__" for name in sub.errors}
        return fields
    return {form.add_prefix(name) if name != "__all__" else "__all__" for name in form.errors}


# --- mutations ---------------------------------------------------------------------------------


def _leaf_paths(value, path=()):
    """Every path into a JSON document (objects and lists), the document itself first."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaf_paths(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value[:2]):
            yield from _leaf_paths(item, (*path, i))


def _set(document, path, value, delete=False):
    if not path:
        return value
    document = json.loads(json.dumps(document))
    node = document
    for step in path[:-1]:
        node = node[step]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return document


@st.composite
def json_mutations(draw, valid: dict):
    """(body, names of the top-level fields changed; empty when the whole body changed)."""
    body, changed = valid, set()
    for _ in range(draw(st.integers(min_value=1, max_value=2))):
        paths = list(_leaf_paths(body)) if isinstance(body, dict | list) else [()]
        path = draw(st.sampled_from(paths))
        kind = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if kind == "delete" and path:
            body = _set(body, path, None, delete=True)
        elif kind == "add" and isinstance(body, dict):
            key = draw(_text(surrogates=True))
            body = _set(body, (key,), draw(JSON_VALUES))
            path = (key,)
        else:
            body = _set(body, path, draw(JSON_VALUES))
        changed.add(str(path[0]) if path else "")
    return body, changed


@st.composite
def form_mutations(draw, valid: dict):
    data = {k: v if isinstance(v, list) else str(v) for k, v in valid.items()}
    changed = set()
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        known = sorted(data) + PARAMETER_NAMES
        key = draw(st.sampled_from(known) | st.sampled_from(sorted(data) or known) | _text(surrogates=False))
        if key in data and draw(st.booleans()) and draw(st.booleans()):
            del data[key]
        else:
            data[key] = draw(FORM_VALUES)
        changed.add(key)
    return data, changed


# --- the properties -----------------------------------------------------------------------------


def _in_savepoint(send):
    """Run one example in a savepoint that is rolled back: examples stay
    independent (a delete case deletes again) and a failing one leaves the
    connection usable for hypothesis's shrinking."""
    with transaction.atomic():
        try:
            return send()
        finally:
            transaction.set_rollback(True)


def _check_refusal(response, changed: set[str], is_json: bool, before: int, after: int) -> None:
    status = response.status_code
    assert status < 500, f"{status}: {response.content[:500]!r}"
    forms = _forms_with_errors(response) if not is_json else []
    errors = _error_messages(response) if not is_json else []
    refused = status >= 400 or bool(forms) or bool(errors)
    if refused:
        assert after == before, f"refused ({status}) but wrote {after - before} row(s)"
    if is_json and status >= 400:
        assert response["Content-Type"].startswith("application/json"), response.content[:300]
        error = response.json()["error"]
        assert isinstance(error, str) and error
        if status in (400, 422) and "" not in changed:
            # A NUL in a key is shown escaped (\0) in the message.
            named = any(name in error or name.replace("\x00", "\\0") in error for name in changed)
            assert named, f"{error!r} names none of {changed}"
    for form in forms:
        # Each error sits on a named field (or the form as a whole); a cross-field
        # rule may put it on the field the request did not change.
        assert _form_error_fields(form), f"a form refused the request without an error: {form!r}"


FUZZ_CASES = [case for case in CASES if case.url_name in CASE_NAMES]


@pytest.mark.django_db
@pytest.mark.parametrize("case", FUZZ_CASES, ids=lambda c: c.url_name)
def test_bad_input_to_a_state_changing_endpoint(client, make_user, case):
    admin = make_user(Role.ADMIN)
    client.force_login(admin)
    kwargs = case.setup(admin)
    url = reverse(case.url_name, kwargs=kwargs)
    valid = case.data(kwargs)
    is_json = case.headers.get("content_type") == "application/json"
    headers = {k: v for k, v in case.headers.items() if k != "content_type"}
    if getattr(resolve(url).func, "api_view", False):
        raw, prefix, token_hash = ApiToken.generate()
        ApiToken.objects.create(user=admin, name="fuzz", prefix=prefix, token_hash=token_hash)
        headers["Authorization"] = f"Bearer {raw}"
    send = getattr(client, case.method)

    # JSON endpoints are few and take any type: three times the examples.
    @settings(max_examples=settings.default.max_examples * (3 if is_json else 1))
    @given(mutation=json_mutations(valid) if is_json else form_mutations(valid))
    def example(mutation):
        body, changed = mutation

        def request():
            client.cookies.pop("messages", None)  # an earlier example's messages are not this one's
            before = _writes()
            if is_json:
                response = send(url, json.dumps(body), content_type="application/json", headers=headers)
            else:
                response = send(url, body, headers=headers)
            _check_refusal(response, changed, is_json, before, _writes())

        _in_savepoint(request)

    example()


QUERY_KEYS = st.sampled_from(PARAMETER_NAMES) | _text(surrogates=False)


def _read_url(name: str, pattern, user) -> str:
    """The URL of a read view: real objects for the views that need one, else made-up ids (a 404)."""
    setup = READ_SETUPS.get(name)
    if setup is not None:
        return reverse(name, kwargs=setup(user))
    converters = pattern.pattern.converters
    fake = {"int": 999_999, "uuid": uuid.uuid4()}
    return reverse(
        name,
        kwargs={k: fake.get(type(c).__name__.replace("Converter", "").lower(), "nope") for k, c in converters.items()},
    )


def _incident(user):
    from incidents import services

    incident = services.incident_declare(actor=None, title="Fuzzed incident", severity=2)
    return {"reference": incident.reference}


def _run(user):
    from tests.checklists.permission_cases import _run as checklist_run

    return {"pk": checklist_run(user)["pk"]}


def _check(user):
    from tests.healthchecks.factories import make_check

    return {"pk": make_check(kind="heartbeat", config={"period_seconds": 3600}).pk}


def _checklist_template(user):
    from checklists.models import ChecklistRun

    return {"pk": ChecklistRun.objects.get(pk=_run(user)["pk"]).template_id}


READ_SETUPS = {
    "incidents:detail": _incident,
    "incidents:timeline_since": _incident,
    "incidents:timeline_older": _incident,
    "incidents:export_timeline": _incident,
    "checklists:run": _run,
    "checklists:run_poll": _run,
    "healthchecks:detail": _check,
    "healthchecks:latency_csv": _check,
    "checklists:template_history_csv": _checklist_template,
    "picker": lambda user: {"source": "people"},
}


@pytest.mark.django_db
@pytest.mark.parametrize("name", READ_VIEWS)
def test_bad_query_strings_on_a_read_page(client, make_user, name):
    user = make_user(Role.ADMIN)
    client.force_login(user)
    pattern = dict(_views())[name]
    url = _read_url(name, pattern, user)

    # Read pages: fewer examples (many pages, and a query string is the only input).
    @settings(max_examples=max(3, settings.default.max_examples // 2))
    @given(query=st.dictionaries(QUERY_KEYS, FORM_VALUES, max_size=4))
    def example(query):
        def request():
            before = _writes()
            response = client.get(url, query)
            assert response.status_code < 500, response.content[:300]
            assert _writes() == before, "a GET wrote rows"

        _in_savepoint(request)

    example()


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(PUBLIC_INPUT))
def test_bad_input_to_a_public_endpoint(client, name):
    pattern = dict(_views())[name]
    url = _read_url(name, pattern, None)

    @given(body=st.dictionaries(_text(False), FORM_VALUES, max_size=3), method=st.sampled_from(["get", "post"]))
    def example(body, method):
        def request():
            before = _writes()
            response = getattr(client, method)(url, body)
            # An unknown token is a 404; a NUL or an oversized body a 400/413. Nothing changes.
            assert response.status_code in (400, 404, 413), response.status_code
            assert _writes() == before

        _in_savepoint(request)

    example()
