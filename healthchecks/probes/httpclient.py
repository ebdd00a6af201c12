"""A small asyncio HTTP/1.1 client for probes.

Why not httpx: a probe makes one request per connection and needs only the
status, headers, a bounded body and the peer certificate; this client does
that with a fraction of the per-request cost, which is what lets one worker
process run thousands of probes per second (bench/healthchecks_bench.py).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from . import policy
from .base import ProbeError

MAX_BODY = 1 << 20  # enough for any health JSON; bigger bodies are cut
USER_AGENT = "OpsConsole-HealthCheck/1.0"


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    peer_cert_der: bytes | None


def ssl_context(*, verify: bool = True, ca_file: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file or None)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


_DEFAULT_CONTEXT: ssl.SSLContext | None = None


def _default_context() -> ssl.SSLContext:
    # Loading the system CA bundle costs milliseconds: do it once per process.
    global _DEFAULT_CONTEXT
    if _DEFAULT_CONTEXT is None:
        _DEFAULT_CONTEXT = ssl_context()
    return _DEFAULT_CONTEXT


class _Exchange(asyncio.Protocol):
    """One request, one response, then the server closes (Connection: close).

    A bare Protocol instead of StreamReader/StreamWriter: a third fewer event
    loop callbacks per probe, which is most of a probe's CPU cost.
    """

    def __init__(self, payload: bytes, max_body: int, done: asyncio.Future):
        self.payload, self.max_body, self.done = payload, max_body, done
        self.buffer = bytearray()
        self.head: tuple[int, dict[str, str], int] | None = None  # status, headers, body offset
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.payload)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.done.done():
            return
        try:
            if self.head is None:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(self.buffer) > 65536:
                        raise ProbeError("malformed HTTP response: headers longer than 64 KiB")
                    return
                status, headers = _parse_head(bytes(self.buffer[:end]))
                self.head = (status, headers, end + 4)
            status, headers, offset = self.head
            length = headers.get("content-length")
            if length is not None and "chunked" not in headers.get("transfer-encoding", "").lower():
                try:
                    wanted = min(int(length), self.max_body)
                except ValueError as exc:
                    raise ProbeError("malformed HTTP response: bad Content-Length") from exc
                if len(self.buffer) - offset >= wanted:
                    self._finish()
            elif len(self.buffer) - offset >= self.max_body:
                self._finish()
        except ProbeError as exc:
            self.done.set_exception(exc)

    def eof_received(self) -> bool:
        self._finish(eof=True)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            if exc is not None and not self.buffer:
                self.done.set_exception(exc)
            else:
                self._finish(eof=True)

    def _finish(self, eof: bool = False) -> None:
        if self.done.done():
            return
        try:
            self.done.set_result(self._response(eof))
        except ProbeError as exc:
            self.done.set_exception(exc)

    def _response(self, eof: bool) -> tuple[int, dict[str, str], bytes]:
        if self.head is None:
            if not self.buffer:
                raise ProbeError(
                    "malformed HTTP response: the server closed the connection without answering"
                )
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                _parse_head(bytes(self.buffer))  # names the bad status line if there is one
                raise ProbeError("malformed HTTP response: headers cut short")
            status, headers = _parse_head(bytes(self.buffer[:end]))
            self.head = (status, headers, end + 4)
        status, headers, offset = self.head
        body = bytes(self.buffer[offset:])
        if headers.get("transfer-encoding", "").lower() == "chunked":
            return status, headers, _dechunk(body, self.max_body)
        length = headers.get("content-length")
        if length is not None:
            length_value = int(length)
            if len(body) < min(length_value, self.max_body):
                raise ProbeError(
                    f"malformed HTTP response: body ended after {len(body)} of {length_value} bytes"
                )
            return status, headers, body[: min(length_value, self.max_body)]
        return status, headers, body[: self.max_body]


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.split(b"\r\n")
    status_line = lines[0]
    try:
        version, code, *_ = status_line.decode("latin-1").split(" ", 2)
        if not version.startswith("HTTP/"):
            raise ValueError(version)
        status = int(code)
    except ValueError as exc:
        raise ProbeError(f"malformed HTTP response: status line {status_line[:60]!r}") from exc
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise ProbeError(f"malformed HTTP response: header line {line[:60]!r}")
        headers[name.strip().lower()] = value.strip()
    return status, headers


def _dechunk(body: bytes, max_body: int) -> bytes:
    out, position = bytearray(), 0
    while True:
        end = body.find(b"\r\n", position)
        if end < 0:
            raise ProbeError("malformed HTTP response: chunked body cut short")
        try:
            size = int(body[position:end].split(b";")[0].strip(), 16)
        except ValueError as exc:
            raise ProbeError("malformed HTTP response: bad chunk size") from exc
        if size == 0 or len(out) >= max_body:
            return bytes(out[:max_body])
        out += body[end + 2 : end + 2 + size]
        position = end + 4 + size


async def request(
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    context: ssl.SSLContext | None = None,
    max_body: int = MAX_BODY,
) -> HttpResponse:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProbeError(f"not an http(s) URL: {url!r}")
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    if ":" in parts.hostname:
        host_header = f"[{parts.hostname}]" + (f":{parts.port}" if parts.port else "")
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {host_header}",
        f"User-Agent: {USER_AGENT}",
        "Accept: */*",
        "Connection: close",
    ]
    given = {name.lower() for name in (headers or {})}
    for name, value in (headers or {}).items():
        if "\r" in name + value or "\n" in name + value:
            raise ProbeError(f"header {name!r} contains a line break")
        lines.append(f"{name}: {value}")
    if body and "content-length" not in given:
        lines.append(f"Content-Length: {len(body)}")
    payload = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    loop = asyncio.get_running_loop()
    done: asyncio.Future = loop.create_future()
    # Through the target policy: the name is resolved and checked once, and
    # the connection goes to the checked address (docs/healthchecks.md).
    transport, _protocol = await policy.create_connection(
        lambda: _Exchange(payload, 0 if method == "HEAD" else max_body, done),
        parts.hostname,
        port,
        ssl=(context or _default_context()) if secure else None,
    )
    try:
        peer_cert = None
        if secure:
            ssl_object = transport.get_extra_info("ssl_object")
            peer_cert = ssl_object.getpeercert(binary_form=True) if ssl_object else None
        status, response_headers, content = await done
        return HttpResponse(status, response_headers, content, peer_cert)
    finally:
        transport.close()
