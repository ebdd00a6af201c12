"""A small asyncio HTTP/1.1 client for probes.

Why not httpx: a probe makes one request per connection and needs only the
status, headers, a bounded body and the peer certificate; this client does
that with a fraction of the per-request cost, which is what lets one worker
process run thousands of probes per second (bench/healthchecks_bench.py).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

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


async def request(
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    context: ssl.SSLContext | None = None,
    max_body: int = MAX_BODY,
) -> HttpResponse:
    import asyncio

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProbeError(f"not an http(s) URL: {url!r}")
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    if ":" in parts.hostname and parts.port is None:
        host_header = f"[{parts.hostname}]"
    reader, writer = await asyncio.open_connection(
        parts.hostname,
        port,
        ssl=(context or _default_context()) if secure else None,
        server_hostname=parts.hostname if secure else None,
    )
    try:
        peer_cert = None
        if secure:
            ssl_object = writer.get_extra_info("ssl_object")
            peer_cert = ssl_object.getpeercert(binary_form=True) if ssl_object else None
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
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        status, response_headers = await _read_head(reader)
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            content = b""
        elif response_headers.get("transfer-encoding", "").lower() == "chunked":
            content = await _read_chunked(reader, max_body)
        elif "content-length" in response_headers:
            try:
                length = int(response_headers["content-length"])
            except ValueError as exc:
                raise ProbeError("malformed HTTP response: bad Content-Length") from exc
            try:
                content = await reader.readexactly(min(length, max_body))
            except asyncio.IncompleteReadError as exc:
                raise ProbeError(
                    "malformed HTTP response: body ended after "
                    f"{len(exc.partial)} of {length} bytes"
                ) from exc
        else:
            content = await reader.read(max_body)
        return HttpResponse(status, response_headers, content, peer_cert)
    finally:
        writer.close()


async def _read_head(reader) -> tuple[int, dict[str, str]]:
    status_line = await reader.readline()
    if not status_line:
        raise ProbeError(
            "malformed HTTP response: the server closed the connection without answering"
        )
    try:
        version, code, *_ = status_line.decode("latin-1").split(" ", 2)
        if not version.startswith("HTTP/"):
            raise ValueError(version)
        status = int(code)
    except ValueError as exc:
        raise ProbeError(f"malformed HTTP response: status line {status_line[:60]!r}") from exc
    headers: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n"):
            return status, headers
        if not line:
            raise ProbeError("malformed HTTP response: headers cut short")
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise ProbeError(f"malformed HTTP response: header line {line[:60]!r}")
        headers[name.strip().lower()] = value.strip()


async def _read_chunked(reader, max_body: int) -> bytes:
    chunks, total = [], 0
    while True:
        size_line = await reader.readline()
        try:
            size = int(size_line.split(b";")[0].strip(), 16)
        except ValueError as exc:
            raise ProbeError("malformed HTTP response: bad chunk size") from exc
        if size == 0:
            return b"".join(chunks)
        chunk = await reader.readexactly(size + 2)
        total += size
        chunks.append(chunk[:-2])
        if total >= max_body:
            return b"".join(chunks)[:max_body]
