"""The probes' HTTP/1.1 client: httptools (llhttp, the parser uvicorn and
Node.js use) under a bare asyncio transport, one request per connection.

Why not httpx or aiohttp: a probe needs only the status, the headers, a bounded
body and the peer certificate; a bare Protocol feeding llhttp does that with a
fraction of their per-request cost, which is what lets one worker process run
thousands of probes per second (bench/healthchecks_bench.py). The parsing is
llhttp's, not ours: repeated header fields, 1xx interim responses, chunked
bodies with trailers and malformed answers are handled as RFC 9112 says.

Redirects are followed as blackbox_exporter (Go's net/http) does: at most
MAX_REDIRECTS hops; 301/302/303 turn a POST into a GET without its body,
307/308 keep method and body; credentials are not sent to another host. Every
hop connects through the same `_exchange` as the first request, so a redirect
cannot reach a target the check itself could not.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import SplitResult, quote, urljoin, urlsplit

import httptools

from . import policy
from .base import ProbeError

MAX_BODY = 1 << 20  # enough for any health JSON; bigger bodies are cut (truncated=True)
MAX_HEAD = 65536  # status line + header fields; llhttp itself sets no bound
MAX_REDIRECTS = 10  # Go's net/http default, which blackbox_exporter uses
USER_AGENT = "OpsConsole-HealthCheck/1.0"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Sent only to the host the check names (or its subdomains), as net/http does.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "cookie2", "www-authenticate"})
BODY_HEADERS = frozenset({"content-length", "content-type", "content-encoding", "transfer-encoding"})
# Characters left as they are in a request target; anything else (spaces,
# controls, non-ASCII from a Location header) is percent-encoded, so no URL can
# inject a line into the request.
_TARGET_SAFE = "/?#[]@!$&'()*+,;=%:-._~"
_EXCERPT = 120
CRLF = b"\r\n"
_STATUS_LINE = re.compile(rb"HTTP/\d\.\d \d{3}(?: [^\r\n]*)?")


class Headers:
    """Header fields in the order received, names lower-cased, repeats kept.

    `get` joins repeated fields with ", " (RFC 9110 §5.3); `get_all` gives
    each value, which is the only right way to read Set-Cookie.
    """

    __slots__ = ("fields",)

    def __init__(self, fields: list[tuple[str, str]] | None = None):
        self.fields = fields if fields is not None else []

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.fields if key == name]

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self.get_all(name)
        return ", ".join(values) if values else default

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(key == name.lower() for key, _ in self.fields)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(key for key, _ in self.fields))

    def __len__(self) -> int:
        return len(self.fields)

    def items(self) -> list[tuple[str, str]]:
        return list(self.fields)

    def __repr__(self) -> str:
        return f"Headers({self.fields!r})"


@dataclass
class HttpResponse:
    status: int
    headers: Headers
    body: bytes
    peer_cert_der: bytes | None
    trailers: Headers = field(default_factory=Headers)
    informational: list[int] = field(default_factory=list)  # 1xx statuses before the final one
    truncated: bool = False  # the body was longer than max_body and was cut
    url: str = ""  # the URL that gave this response (after redirects)
    redirects: list[str] = field(default_factory=list)  # the URLs redirected from, in order


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


def _excerpt(value: str | bytes) -> str:
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    return repr(text if len(text) <= _EXCERPT else text[:_EXCERPT] + "…")


class _Exchange(asyncio.Protocol):
    """One request, one response, then the connection closes (Connection: close).

    The protocol is also llhttp's callback object: httptools calls on_header,
    on_headers_complete, on_body and on_message_complete as bytes arrive. A bare
    Protocol instead of StreamReader/StreamWriter costs a third fewer event-loop
    callbacks per probe, which is most of a probe's CPU cost.
    """

    def __init__(self, payload: bytes, max_body: int, head_only: bool, done: asyncio.Future):
        self.payload, self.max_body, self.head_only, self.done = payload, max_body, head_only, done
        self.parser = httptools.HttpResponseParser(self)
        self.received = 0
        self.head_size = 0  # bytes of header fields so far (llhttp sets no bound)
        self.first_bytes = b""  # for naming a bad status line
        self.fields: list[tuple[str, str]] = []
        self.trailers: list[tuple[str, str]] = []
        self.informational: list[int] = []
        self.status: int | None = None  # the final (non-1xx) status, once its head is parsed
        self.body = bytearray()
        self.truncated = False

    # --- asyncio ----------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        transport.write(self.payload)

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            return
        if not self.received:
            self.first_bytes = data[:_EXCERPT]
        self.received += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            return  # a 101: on_headers_complete has failed the exchange
        except httptools.HttpParserError as exc:
            self._fail(self._where() + (str(exc) or type(exc).__name__))
            return
        if self.status is None and self.received > MAX_HEAD and not self.done.done():
            self._fail(f"headers longer than {MAX_HEAD // 1024} KiB")

    def eof_received(self) -> bool:
        self._end_of_stream()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done.done():
            return
        if exc is not None and not self.received:
            self.done.set_exception(exc)
        else:
            self._end_of_stream()

    # --- httptools callbacks ----------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_size += len(name) + len(value) + 4
        if self.head_size > MAX_HEAD:
            self._fail(f"headers longer than {MAX_HEAD // 1024} KiB")
        pair = (name.decode("latin-1").lower(), value.decode("latin-1"))
        # Fields after the final head are a chunked body's trailer section.
        (self.fields if self.status is None else self.trailers).append(pair)

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:  # 101 would be final: this client never asks to upgrade
            # An interim response (100 Continue, 103 Early Hints): llhttp starts
            # the next message; the final answer follows on the same connection.
            self.informational.append(status)
            self.fields = []
            return
        self.status = status
        if status == 101:
            self._fail("the server switched protocols (101) though the probe did not ask to")
        elif self.head_only:
            self._succeed()  # a HEAD answer's Content-Length announces a body that never comes

    def on_body(self, data: bytes) -> None:
        room = self.max_body - len(self.body)
        if len(data) > room:
            self.body += data[:room]
            self.truncated = True
            self._succeed()
        else:
            self.body += data

    def on_message_complete(self) -> None:
        if self.status is not None:
            self._succeed()

    # --- outcome ----------------------------------------------------------------------

    def _succeed(self) -> None:
        if not self.done.done():
            self.done.set_result(self)

    def _fail(self, reason: str) -> None:
        if not self.done.done():
            self.done.set_exception(ProbeError(f"malformed HTTP response: {reason}"))

    def _where(self) -> str:
        if self.status is not None:
            return "chunked body: " if self._chunked() else "body: "
        first_line, _, rest = self.first_bytes.partition(CRLF)
        if not self.fields and not (_STATUS_LINE.fullmatch(first_line) and rest):
            return f"status line {_excerpt(first_line)}: "
        return f"header line {len(self.fields) + 2}: "

    def _chunked(self) -> bool:
        return "chunked" in ", ".join(v for k, v in self.fields if k == "transfer-encoding").lower()

    def _end_of_stream(self) -> None:
        """The server closed: fine if the message was complete or its body runs to the close."""
        if self.done.done():
            return
        if not self.received:
            self._fail("the server closed the connection without answering")
        elif self.status is None:
            self._fail(
                "headers cut short"
                if CRLF in self.first_bytes
                else f"status line {_excerpt(self.first_bytes)} cut short"
            )
        elif self._chunked():
            self._fail("chunked body cut short")
        elif any(k == "content-length" for k, _ in self.fields):
            length = next(v for k, v in self.fields if k == "content-length")
            self._fail(f"body ended after {len(self.body)} of {length} bytes")
        else:
            self._succeed()  # no length given: the body is everything until the close


def _request_bytes(method: str, parts: SplitResult, hostname: str, headers: dict[str, str], body: bytes) -> bytes:
    target = quote(parts.path or "/", safe=_TARGET_SAFE)
    if parts.query:
        target = f"{target}?{quote(parts.query, safe=_TARGET_SAFE)}"
    host = f"[{hostname}]" if ":" in hostname else hostname
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    lines = [
        f"{method} {target} HTTP/1.1",
        f"Host: {host}",
        f"User-Agent: {USER_AGENT}",
        "Accept: */*",
        "Connection: close",
    ]
    given = set()
    for name, value in headers.items():
        if any(c in name + value for c in "\r\n\0") or not name or ":" in name:
            raise ProbeError(f"header {name[:40]!r} contains a line break, a NUL or a colon in its name")
        given.add(name.lower())
        lines.append(f"{name}: {value}")
    if body and "content-length" not in given:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + body


_BAD_HOST_CHARACTER = re.compile(r"[\s\x00-\x1f]")


def _split(url: str) -> tuple[SplitResult, str, int]:
    """(parts, host name, port). The host name is read once: SplitResult
    parses the netloc again on every .hostname."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ProbeError(f"not a valid URL: {_excerpt(url)} ({exc})") from exc
    hostname = parts.hostname
    if parts.scheme not in ("http", "https") or not hostname:
        raise ProbeError(f"not an http(s) URL: {_excerpt(url)}")
    if _BAD_HOST_CHARACTER.search(hostname):
        raise ProbeError(f"not a valid host name: {_excerpt(hostname)}")
    return parts, hostname, port or (443 if parts.scheme == "https" else 80)


async def _exchange(
    parts: SplitResult,
    hostname: str,
    port: int,
    payload: bytes,
    *,
    head_only: bool,
    context: ssl.SSLContext | None,
    max_body: int,
) -> tuple[_Exchange, bytes | None]:
    """One connection, one request, one response. Every hop of a redirect chain
    comes through here, so whatever checks a connection checks every hop."""
    secure = parts.scheme == "https"
    loop = asyncio.get_running_loop()
    done: asyncio.Future = loop.create_future()
    if not secure:
        return await _plain_exchange(loop, hostname, port, _Exchange(payload, max_body, head_only, done)), None
    # Through the target policy: the name is resolved and checked once, and
    # the connection goes to the checked address (docs/healthchecks.md).
    transport, _protocol = await policy.create_connection(
        lambda: _Exchange(payload, max_body, head_only, done),
        hostname,
        port,
        ssl=context or _default_context(),
    )
    try:
        peer_cert = None
        if secure:
            ssl_object = transport.get_extra_info("ssl_object")
            peer_cert = ssl_object.getpeercert(binary_form=True) if ssl_object else None
        return await done, peer_cert
    finally:
        transport.close()


READ_SIZE = 256 * 1024  # what asyncio's own transports read at once


async def _plain_exchange(loop: asyncio.AbstractEventLoop, host: str, port: int, exchange: _Exchange) -> _Exchange:
    """A plain-HTTP exchange on a bare non-blocking socket: send the request,
    then feed whatever arrives to the exchange from a reader callback.

    Why not loop.create_connection: a transport costs a dozen event-loop
    callbacks, futures and selector updates per connection, more than half
    of a probe's CPU (bench/healthchecks_bench.py); a probe needs none of
    its flow control. TLS keeps the transport (the handshake needs it). The
    socket comes from the same target policy, so it is connected to the
    checked address only.
    """
    sock = await policy.connect_socket(host, port)
    fd = sock.fileno()
    done = exchange.done
    add_reader, remove_reader, _add_writer, _remove_writer = policy.fd_watchers(loop)

    def readable() -> None:
        try:
            data = sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # reset by the peer: as a transport reports it
            remove_reader(fd)
            exchange.connection_lost(exc)
            return
        if data:
            exchange.data_received(data)
        else:
            remove_reader(fd)
            exchange.eof_received()

    try:
        payload = exchange.payload
        try:
            sent = sock.send(payload)
        except (BlockingIOError, InterruptedError):
            sent = 0
        if sent < len(payload):  # more than the socket buffer holds: wait for room
            await loop.sock_sendall(sock, memoryview(payload)[sent:])
        if not done.done():
            add_reader(fd, readable)
        return await done
    finally:
        remove_reader(fd)
        sock.close()


def _same_site(host: str, original: str) -> bool:
    """net/http's rule for credentials: the same host or a subdomain of it."""
    return host == original or host.endswith("." + original)


async def request(
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    context: ssl.SSLContext | None = None,
    max_body: int = MAX_BODY,
    follow_redirects: bool = True,
    max_redirects: int = MAX_REDIRECTS,
) -> HttpResponse:
    """One HTTP(S) request, following up to `max_redirects` redirects.

    Raises ProbeError (a message for the operator) for a malformed answer, a
    redirect loop, too many redirects or a redirect to a non-HTTP URL; OSError
    and ssl errors for the connection itself (base.error_message names them).
    """
    headers = dict(headers or {})
    parts, original_host, port = _split(url)
    hostname = original_host
    redirects: list[str] = []
    while True:
        payload = _request_bytes(method, parts, hostname, headers, body)
        exchange, peer_cert = await _exchange(
            parts,
            hostname,
            port,
            payload,
            head_only=method == "HEAD",
            context=context,
            max_body=max_body,
        )
        status = exchange.status
        location = next((v for k, v in exchange.fields if k == "location"), None)
        if not (follow_redirects and status in REDIRECT_STATUSES and location):
            return HttpResponse(
                status=status,
                headers=Headers(exchange.fields),
                body=bytes(exchange.body),
                peer_cert_der=peer_cert,
                trailers=Headers(exchange.trailers),
                informational=exchange.informational,
                truncated=exchange.truncated,
                url=url,
                redirects=redirects,
            )
        redirects.append(url)
        url = urljoin(url, location.strip()).partition("#")[0]
        if url in redirects:
            raise ProbeError(f"redirect loop: {_excerpt(' → '.join([*redirects, url]))}")
        if len(redirects) > max_redirects:
            raise ProbeError(f"stopped after {max_redirects} redirects (the last to {_excerpt(url)})")
        if urlsplit(url).scheme not in ("http", "https"):
            raise ProbeError(f"HTTP {status} redirects to {_excerpt(url)}, not an http(s) URL")
        if status in (301, 302, 303) and method not in ("GET", "HEAD"):
            method, body = "GET", b""
            headers = {k: v for k, v in headers.items() if k.lower() not in BODY_HEADERS}
        if not _same_site(urlsplit(url).hostname or "", original_host):
            headers = {k: v for k, v in headers.items() if k.lower() not in CREDENTIAL_HEADERS}
        parts, hostname, port = _split(url)
