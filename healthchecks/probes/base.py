"""What every probe takes and returns.

A probe is an async function `probe(spec) -> ProbeResult`. It never touches
the ORM (it runs inside the worker's event loop, many at once) and never
raises: run_probe() cuts it at the check's timeout and turns any error into
a critical result with a clear message.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

OK, WARNING, CRITICAL, UNKNOWN = "ok", "warning", "critical", "unknown"
_SEVERITY = {OK: 0, UNKNOWN: 1, WARNING: 2, CRITICAL: 3}


@dataclass(frozen=True)
class ProbeSpec:
    """Everything a probe needs, copied from the Check row."""

    check_id: int
    kind: str
    config: dict[str, Any]
    timeout: float
    warning: float | None = None
    critical: float | None = None
    interval_seconds: int = 60
    last_ping_at: datetime.datetime | None = None
    last_ping_failed: bool = False
    created_at: datetime.datetime | None = None

    @classmethod
    def from_check(cls, check: Any) -> ProbeSpec:
        return cls(
            check_id=check.pk,
            kind=check.kind,
            config=dict(check.config or {}),
            timeout=float(check.timeout_seconds),
            warning=check.warning_threshold,
            critical=check.critical_threshold,
            interval_seconds=check.interval_seconds,
            last_ping_at=check.last_ping_at,
            last_ping_failed=check.last_ping_failed,
            created_at=check.created_at,
        )


# What a result says to people without `config.edit` when the probe gave no
# summary of its own: the state only, nothing fetched from the target.
GENERIC_SUMMARY = {
    OK: "check passed",
    WARNING: "check degraded",
    CRITICAL: "check failed",
    UNKNOWN: "no result",
}
# The most characters of anything fetched from a target (a body, a JSON value,
# a query's value, a server's error) that a message may quote.
EXCERPT_CHARS = 40


def excerpt(value: object, limit: int = EXCERPT_CHARS) -> str:
    """A short, bounded quote of fetched data for a detailed message."""
    text = value if isinstance(value, str) else repr(value)
    if isinstance(value, bytes):
        text = value[: limit * 4].decode("utf-8", "replace")
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return repr(text) if isinstance(value, (str, bytes)) else text


@dataclass
class ProbeResult:
    """`message` is the detailed text (it may quote a short excerpt of what the
    probe fetched) shown only to roles with `config.edit`; `summary` says what
    happened without quoting anything fetched, for everyone else."""

    state: str
    message: str
    latency_ms: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    summary: str = ""

    def __post_init__(self) -> None:
        if not self.summary:
            self.summary = GENERIC_SUMMARY.get(self.state, "no result")


class ProbeError(Exception):
    """A failure with a message meant for the operator (shown as is to roles
    with `config.edit`) and a summary that quotes nothing fetched (shown to
    everyone else; without one, a generic "check failed")."""

    def __init__(self, message: str, summary: str | None = None):
        super().__init__(message)
        self.summary = summary or _leading_words(message) or GENERIC_SUMMARY[CRITICAL]


def _leading_words(message: str) -> str:
    """`malformed HTTP response: <what was received>` → `malformed HTTP
    response`: by convention a message quotes what it received after a colon.
    Anything quoted or bracketed before it means no safe prefix."""
    head, sep, _rest = message.partition(": ")
    if not sep or len(head) > 60 or any(c in head for c in "'\"([{<"):
        return ""
    return head


def worse(a: str, b: str) -> str:
    return a if _SEVERITY[a] >= _SEVERITY[b] else b


def grade(value: float, warning: float | None, critical: float | None, *, below: bool = False) -> str:
    """The state of a value against thresholds: above (or, with below=True,
    under) the critical threshold is critical, then warning, else ok."""
    if below:
        if critical is not None and value < critical:
            return CRITICAL
        if warning is not None and value < warning:
            return WARNING
        return OK
    if critical is not None and value > critical:
        return CRITICAL
    if warning is not None and value > warning:
        return WARNING
    return OK


def describe_threshold(
    value: float,
    state: str,
    warning: float | None,
    critical: float | None,
    *,
    below: bool = False,
    unit: str = "",
) -> str:
    limit = critical if state == CRITICAL else warning
    if state == OK or limit is None:
        return f"{value:g}{unit}"
    word = "below" if below else "above"
    return f"{value:g}{unit} is {word} the {state} threshold {limit:g}{unit}"


def error_message(exc: BaseException) -> str:
    """One line naming what failed, for any exception a probe may meet."""
    import ssl

    if isinstance(exc, ProbeError):
        return str(exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate rejected: {exc.verify_message or exc.reason}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc.reason or exc}"
    import socket

    if isinstance(exc, socket.gaierror):
        return f"DNS lookup failed: {exc.strerror or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by peer"
    if isinstance(exc, OSError) and exc.strerror:
        return f"network error: {exc.strerror}"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:480]


def error_summary(exc: BaseException) -> str:
    """error_message() without anything the target sent: the summary shown to
    roles without `config.edit`."""
    import ssl

    if isinstance(exc, ProbeError):
        return exc.summary
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "TLS certificate rejected"
    if isinstance(exc, ssl.SSLError):
        return "TLS handshake failed"
    if isinstance(exc, OSError):
        return error_message(exc)  # the local system's words (refused, reset, no route)
    return f"probe error ({type(exc).__name__})"
