"""Network probes: HTTP(S), TCP connect, DNS resolution, TLS certificate."""

from __future__ import annotations

import datetime
import json
import time
from typing import Any

from . import files, httpclient, policy
from .base import (
    CRITICAL,
    OK,
    WARNING,
    ProbeError,
    ProbeResult,
    ProbeSpec,
    describe_threshold,
    excerpt,
    grade,
)


def cert_expiry(der: bytes | None) -> datetime.datetime | None:
    if not der:
        return None
    from cryptography import x509

    return x509.load_der_x509_certificate(der).not_valid_after_utc


def json_path_get(document: Any, path: str) -> Any:
    """Follow a dotted path (`checks.database.status`, `items[0].name`, `$.status`)."""
    value = document
    for part in path.removeprefix("$").strip(".").replace("[", ".").replace("]", "").split("."):
        if part == "":
            continue
        if isinstance(value, list):
            try:
                value = value[int(part)]
            except (ValueError, IndexError) as exc:
                raise ProbeError(f"JSON path {path!r}: no item {part!r}", "JSON path not found") from exc
        elif isinstance(value, dict):
            if part not in value:
                raise ProbeError(f"JSON path {path!r}: no key {part!r}", "JSON path not found")
            value = value[part]
        else:
            raise ProbeError(f"JSON path {path!r}: {part!r} is inside a {type(value).__name__}", "JSON path not found")
    return value


async def probe_http(spec: ProbeSpec) -> ProbeResult:
    config = spec.config
    started = time.perf_counter()
    response = await httpclient.request(
        config["url"],
        method=config.get("method", "GET").upper(),
        headers=config.get("headers") or {},
        body=(config.get("body") or "").encode(),
        context=files.tls_context(config),
        follow_redirects=config.get("follow_redirects", True),
    )
    latency = (time.perf_counter() - started) * 1000
    details: dict[str, Any] = {"http_status": response.status}
    hops = len(response.redirects)
    after = f" after {hops} redirect{'s' if hops > 1 else ''}" if hops else ""
    if hops:
        details["redirects"] = hops
    expiry = cert_expiry(response.peer_cert_der)
    if expiry:
        details["cert_expiry"] = expiry.timestamp()
    expected = config.get("expected_status") or []
    if (expected and response.status not in expected) or (not expected and not 200 <= response.status < 400):
        wanted = ", ".join(map(str, expected)) if expected else "2xx/3xx"
        text = f"HTTP {response.status}{after}, expected {wanted}"
        return ProbeResult(CRITICAL, text, latency, details, summary=text)
    text = None
    if config.get("body_contains"):
        text = response.body.decode("utf-8", "replace")
        if config["body_contains"] not in text:
            return ProbeResult(
                CRITICAL,
                f"HTTP {response.status}: body does not contain {excerpt(config['body_contains'])}",
                latency,
                details,
                summary=f"HTTP {response.status}: expected text missing from the body",
            )
    if config.get("json_path"):
        try:
            document = json.loads(response.body)
        except ValueError:
            return ProbeResult(
                CRITICAL,
                f"HTTP {response.status}: body is not JSON ({excerpt(response.body)})",
                latency,
                details,
                summary=f"HTTP {response.status}: body is not JSON",
            )
        value = json_path_get(document, config["json_path"])
        wanted = config.get("json_equals")
        if wanted is not None and str(value) != str(wanted) and value != wanted:
            return ProbeResult(
                CRITICAL,
                f"{config['json_path']} is {excerpt(value)}, expected {excerpt(wanted)}",
                latency,
                details,
                summary=f"HTTP {response.status}: {config['json_path'][:80]} differs from the expected value",
            )
    state = grade(latency, spec.warning, spec.critical)
    text = (
        f"HTTP {response.status}{after} in "
        f"{describe_threshold(round(latency, 1), state, spec.warning, spec.critical, unit=' ms')}"
    )
    return ProbeResult(state, text, latency, details, summary=text)


async def probe_tcp(spec: ProbeSpec) -> ProbeResult:
    host, port = spec.config["host"], int(spec.config["port"])
    started = time.perf_counter()
    _reader, writer = await policy.open_connection(host, port)
    latency = (time.perf_counter() - started) * 1000
    writer.close()
    state = grade(latency, spec.warning, spec.critical)
    text = describe_threshold(round(latency, 1), state, spec.warning, spec.critical, unit=" ms")
    return ProbeResult(state, f"connected to {host}:{port} in {text}", latency, summary=f"connected in {text}")


async def probe_dns(spec: ProbeSpec) -> ProbeResult:
    import dns.asyncresolver
    import dns.exception
    import dns.resolver

    config = spec.config
    nameserver = config.get("nameserver")
    resolver = dns.asyncresolver.Resolver(configure=not nameserver)
    if nameserver:
        policy.check_address(nameserver)
        resolver.nameservers = [nameserver]
        resolver.port = int(config.get("port") or 53)
    record_type = config.get("record_type", "A")
    started = time.perf_counter()
    try:
        answer = await resolver.resolve(config["name"], record_type, lifetime=spec.timeout)
    except dns.resolver.NXDOMAIN as exc:
        raise ProbeError(f"{config['name']} does not exist (NXDOMAIN)", "name does not exist") from exc
    except dns.resolver.NoAnswer as exc:
        raise ProbeError(f"{config['name']} has no {record_type} record", f"no {record_type} record") from exc
    except dns.exception.Timeout as exc:
        text = f"DNS server did not answer within {spec.timeout:g}s"
        raise ProbeError(text, text) from exc
    except dns.resolver.NoNameservers as exc:
        raise ProbeError(f"no DNS server could answer for {config['name']}", "no DNS server answered") from exc
    latency = (time.perf_counter() - started) * 1000
    # Only the first few records, each cut short: a TXT answer is data.
    found = sorted(rdata.to_text().rstrip(".")[:100] for rdata in answer)[:10]
    expected = [address.rstrip(".") for address in config.get("expected") or []]
    details = {"addresses": found}
    missing = [address for address in expected if address not in found]
    if missing:
        return ProbeResult(
            CRITICAL,
            f"{config['name']} resolved to {', '.join(found)}; expected {', '.join(missing)} missing",
            latency,
            details,
            summary="an expected address is missing from the answer",
        )
    state = grade(latency, spec.warning, spec.critical)
    text = describe_threshold(round(latency, 1), state, spec.warning, spec.critical, unit=" ms")
    return ProbeResult(state, f"{config['name']} → {', '.join(found)}", latency, details, summary=f"resolved in {text}")


async def probe_tls(spec: ProbeSpec) -> ProbeResult:
    """Days until the certificate expires, after full verification (chain and
    hostname, unless the check turns them off): a certificate that fails
    verification is critical with the verifier's reason."""
    config = spec.config
    host, port = config["host"], int(config.get("port") or 443)
    server_name = config.get("server_name") or host
    context = files.tls_context(config) or httpclient.ssl_context()
    started = time.perf_counter()
    _reader, writer = await policy.open_connection(host, port, ssl=context, server_hostname=server_name)
    latency = (time.perf_counter() - started) * 1000
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
    expiry = cert_expiry(der)
    if expiry is None:
        raise ProbeError("the server sent no certificate", "the server sent no certificate")
    days_left = (expiry - datetime.datetime.now(datetime.UTC)).total_seconds() / 86400
    warning = spec.warning if spec.warning is not None else 30
    critical = spec.critical if spec.critical is not None else 7
    details = {"cert_expiry": expiry.timestamp(), "days_left": round(days_left, 2)}
    if days_left <= 0:
        text = f"certificate expired on {expiry:%Y-%m-%d %H:%M} UTC"
        return ProbeResult(CRITICAL, text, latency, details, summary=text)
    state = grade(days_left, warning, critical, below=True)
    word = {OK: "", WARNING: " (warning: renew soon)", CRITICAL: " (critical: renew now)"}[state]
    return ProbeResult(
        state,
        f"certificate for {server_name} expires on {expiry:%Y-%m-%d} in {days_left:.1f} days{word}",
        latency,
        details,
        summary=f"certificate expires on {expiry:%Y-%m-%d} in {days_left:.1f} days{word}",
    )
