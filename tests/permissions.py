"""The permission matrix: one Case per URL that changes state.

Each app lists its cases in tests/<app>/permission_cases.py as CASES; the
matrix test (tests/test_permission_matrix.py) walks every case for
anonymous, every role, and checks that no protected URL lacks a case.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Case:
    url_name: str
    capability: str
    # Builds what the request needs (runs once per role, on a fresh database
    # state) and returns the URL kwargs.
    setup: Callable[[Any], dict] = lambda user: {}
    # The form or JSON data for the request, from the URL kwargs.
    data: Callable[[dict], dict] = lambda kwargs: {}
    method: str = "post"
    # What "allowed" looks like: a redirect after a form post, 200 for htmx partials.
    ok_statuses: frozenset[int] = field(default_factory=lambda: frozenset({200, 201, 204, 302}))
    headers: dict[str, str] = field(default_factory=dict)
