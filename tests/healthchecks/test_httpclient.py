"""The probes' HTTP client (httptools under an asyncio transport) against real
local HTTP and HTTPS servers: repeated header fields, 1xx interim responses,
chunked bodies with trailers, body limits, and redirects followed as
blackbox_exporter does (bounded, loops reported, credentials kept on their host,
every hop through the same target check)."""

from __future__ import annotations

import asyncio
import json

import pytest

from healthchecks.probes import ProbeSpec, run_probe
from healthchecks.probes.httpclient import MAX_BODY, MAX_REDIRECTS, request, ssl_context
from tests.healthchecks.targets import CertificateAuthority, HttpTarget, RawTarget, Reply, json_route, redirect

HEALTHY = json.dumps({"status": "healthy"}).encode()


def probe(config: dict, *, timeout: float = 3.0):
    return asyncio.run(run_probe(ProbeSpec(check_id=1, kind="http", config=config, timeout=timeout)))


def fetch(url: str, **kwargs):
    return asyncio.run(request(url, **kwargs))


@pytest.fixture
def target():
    routes: dict = {"/healthz": json_route({"status": "healthy"})}
    server = HttpTarget(routes)
    yield server
    server.close()


def _raw(payload: bytes, config: dict | None = None):
    server = RawTarget(payload)
    try:
        return probe({"url": f"http://127.0.0.1:{server.port}/", **(config or {})})
    finally:
        server.close()


# --- header fields, interim responses, trailers ----------------------------------------


def test_repeated_header_fields_are_all_kept(target):
    target.server.routes["/cookies"] = Reply(
        200,
        [("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; Path=/"), ("X-Multi", "one"), ("x-multi", "two")],
        b"ok",
    )
    response = fetch(target.url("/cookies"))
    assert response.headers.get_all("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert response.headers.get("X-Multi") == "one, two"  # RFC 9110 §5.3 combination
    assert "content-length" in response.headers and response.headers["content-length"] == "2"


def test_interim_1xx_responses_come_before_the_final_one(target):
    target.server.routes["/hints"] = Reply(
        200,
        [("Content-Type", "application/json")],
        HEALTHY,
        interim=[(103, [("Link", "</style.css>; rel=preload")]), (102, [])],
    )
    response = fetch(target.url("/hints"))
    assert (response.status, response.informational, response.body) == (200, [103, 102], HEALTHY)
    assert "link" not in response.headers  # the hints' fields are not the answer's
    result = probe({"url": target.url("/hints"), "json_path": "status", "json_equals": "healthy"})
    assert result.state == "ok", result.message


def test_expect_100_continue_post(target):
    target.server.routes["/submit"] = json_route({"status": "healthy"})
    response = fetch(target.url("/submit"), method="POST", headers={"Expect": "100-continue"}, body=b'{"ping": true}')
    assert (response.status, response.informational) == (200, [100])
    assert target.server.bodies[-1] == b'{"ping": true}'


def test_chunked_body_with_trailer_fields(target):
    document = json.dumps({"status": "healthy", "checks": {"db": "ok"}}).encode()
    target.server.routes["/chunked"] = Reply(
        200,
        [("Content-Type", "application/json"), ("Trailer", "X-Checksum, X-Rows")],
        chunks=[document[:7], document[7:20], document[20:]],
        trailers=[("X-Checksum", "99"), ("X-Rows", "1"), ("X-Rows", "2")],
    )
    response = fetch(target.url("/chunked"))
    assert response.body == document
    assert response.trailers.get("x-checksum") == "99" and response.trailers.get_all("x-rows") == ["1", "2"]
    assert "x-checksum" not in response.headers
    result = probe({"url": target.url("/chunked"), "json_path": "checks.db", "json_equals": "ok"})
    assert result.state == "ok", result.message


def test_head_does_not_wait_for_the_announced_body(target):
    result = probe({"url": target.url("/healthz"), "method": "HEAD"}, timeout=1.0)
    assert result.state == "ok" and result.message.startswith("HTTP 200 in "), result.message
    assert target.server.requests[-1][0] == "HEAD"


# --- body limits ------------------------------------------------------------------------


def test_body_longer_than_the_limit_is_cut_and_marked(target):
    big = b"x" * (MAX_BODY + 5000) + b"needle"
    target.server.routes["/big"] = Reply(200, [("Content-Type", "text/plain")], big)
    target.server.routes["/big-chunked"] = Reply(
        200, [], chunks=[big[i : i + 65536] for i in range(0, len(big), 65536)]
    )
    response = fetch(target.url("/big"), max_body=1000)
    assert (len(response.body), response.truncated) == (1000, True)
    chunked = fetch(target.url("/big-chunked"))
    assert (len(chunked.body), chunked.truncated) == (MAX_BODY, True)
    whole = fetch(target.url("/big"), max_body=len(big))
    assert (whole.body == big, whole.truncated) == (True, False)
    # The probe reads at most MAX_BODY: text past it is not seen.
    result = probe({"url": target.url("/big"), "body_contains": "needle"})
    assert result.state == "critical" and "does not contain 'needle'" in result.message


def test_body_until_the_close_when_no_length_is_given():
    result = _raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it", {"body_contains": "all of it"})
    assert result.state == "ok", result.message


@pytest.mark.parametrize(
    "payload, expected",
    [
        (
            b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n",
            "malformed HTTP response: headers longer than 64 KiB",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
            "malformed HTTP response: chunked body cut short",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "malformed HTTP response: chunked body: Invalid character in chunk size",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
            "malformed HTTP response: header line 3: Duplicate Content-Length",
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "malformed HTTP response: headers cut short"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "malformed HTTP response: status line 'HTTP/1.1 2000 OK'"),
        (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
            "malformed HTTP response: the server switched protocols (101)",
        ),
    ],
)
def test_malformed_answers_are_named(payload, expected):
    result = _raw(payload)
    assert result.state == "critical"
    assert result.message.startswith(expected), result.message


# --- redirects ----------------------------------------------------------------------------


def test_redirects_are_followed_by_default(target):
    target.server.routes["/old"] = redirect("/older", 301)
    target.server.routes["/older"] = redirect(target.url("/healthz"), 308)
    result = probe({"url": target.url("/old"), "json_path": "status", "json_equals": "healthy"})
    assert result.state == "ok", result.message
    assert result.message.startswith("HTTP 200 after 2 redirects in ") and result.details["redirects"] == 2
    assert [path for _, path, _ in target.server.requests] == ["/old", "/older", "/healthz"]
    response = fetch(target.url("/old"))
    assert response.url == target.url("/healthz") and response.redirects == [target.url("/old"), target.url("/older")]


def test_follow_redirects_off_reports_the_redirect_itself(target):
    target.server.routes["/old"] = redirect("/healthz")
    result = probe({"url": target.url("/old"), "follow_redirects": False})
    assert result.state == "ok" and result.message.startswith("HTTP 302 in "), result.message
    strict = probe({"url": target.url("/old"), "follow_redirects": False, "expected_status": [200]})
    assert (strict.state, strict.message) == ("critical", "HTTP 302, expected 200")
    assert [path for _, path, _ in target.server.requests] == ["/old", "/old"]


def test_redirect_to_an_error_names_the_hops(target):
    target.server.routes["/old"] = redirect("/missing")
    result = probe({"url": target.url("/old")})
    assert (result.state, result.message) == ("critical", "HTTP 404 after 1 redirect, expected 2xx/3xx")


def test_redirect_loop_is_reported(target):
    target.server.routes["/a"] = redirect("/b")
    target.server.routes["/b"] = redirect(target.url("/a") + "#fragment")  # fragments are not part of the URL
    result = probe({"url": target.url("/a")})
    assert result.state == "critical" and result.message.startswith("redirect loop: "), result.message
    assert len(target.server.requests) <= 4


def test_redirects_stop_at_the_limit(target):
    def hop(handler):
        n = int(handler.path.split("?n=")[1])
        return json_route({"status": "healthy"}) if n == 0 else redirect(f"/hop?n={n - 1}")

    target.server.routes["/hop"] = hop
    within = probe({"url": target.url(f"/hop?n={MAX_REDIRECTS}")})
    assert within.state == "ok" and within.details["redirects"] == MAX_REDIRECTS, within.message
    beyond = probe({"url": target.url("/hop?n=1000")})
    assert beyond.state == "critical"
    assert beyond.message.startswith(f"stopped after {MAX_REDIRECTS} redirects (the last to "), beyond.message
    assert len(target.server.requests) == (MAX_REDIRECTS + 1) * 2


def test_redirect_to_another_scheme_is_refused(target):
    target.server.routes["/ftp"] = redirect("ftp://127.0.0.1/file")
    result = probe({"url": target.url("/ftp")})
    assert result.state == "critical" and "not an http(s) URL" in result.message


def test_post_becomes_get_on_303_and_stays_post_on_307(target):
    target.server.routes["/form"] = redirect("/healthz", 303)
    target.server.routes["/keep"] = redirect("/healthz", 307)
    fetch(target.url("/form"), method="POST", body=b"payload", headers={"Content-Type": "text/plain"})
    (_, _, first), (method, _, second) = target.server.requests[-2:]
    assert (method, target.server.bodies[-1], second.get("Content-Type")) == ("GET", b"", None)
    assert first["Content-Type"] == "text/plain"
    fetch(target.url("/keep"), method="POST", body=b"payload")
    assert (target.server.requests[-1][0], target.server.bodies[-1]) == ("POST", b"payload")


def test_credentials_stay_on_their_host(target):
    target.server.routes["/same"] = redirect("/healthz")
    target.server.routes["/other"] = redirect(target.url("/healthz", host="localhost"))
    secret = {"Authorization": "Bearer s3cret", "Cookie": "session=1", "X-Probe": "yes"}
    fetch(target.url("/same"), headers=secret)
    assert target.server.requests[-1][2]["Authorization"] == "Bearer s3cret"
    fetch(target.url("/other"), headers=secret)
    headers = target.server.requests[-1][2]
    assert headers["Host"] == f"localhost:{target.port}"
    assert (headers["Authorization"], headers["Cookie"], headers["X-Probe"]) == (None, None, "yes")


def test_https_redirect_keeps_verifying_and_reports_the_final_certificate(tmp_path, settings):
    settings.HEALTHCHECK_FILES_DIR = str(tmp_path)  # CA bundles must live there
    ca = CertificateAuthority(tmp_path)
    server = HttpTarget({"/healthz": json_route({"status": "healthy"})}, context=ca.issue(days=45))
    server.server.routes["/start"] = redirect(server.url("/healthz", host="localhost"))
    try:
        result = probe({"url": server.url("/start", host="localhost"), "ca_file": str(ca.ca_file)})
        untrusted = probe({"url": server.url("/start", host="localhost")})
        response = fetch(server.url("/start", host="localhost"), context=ssl_context(ca_file=str(ca.ca_file)))
    finally:
        server.close()
    assert result.state == "ok" and result.details["redirects"] == 1, result.message
    assert abs(result.details["cert_expiry"] - ca.last_not_after.timestamp()) < 2
    assert untrusted.state == "critical" and untrusted.message.startswith("TLS certificate rejected")
    assert response.peer_cert_der and response.url.endswith("/healthz")


def test_request_target_cannot_inject_lines(target):
    target.server.routes["/a b"] = None
    fetch(target.url("/a b\r\nX-Injected: 1"))
    method, path, headers = target.server.requests[-1]
    assert path.startswith("/a%20b") and "\r" not in path and " " not in path
    assert "X-Injected" not in headers


# --- the plain-HTTP path: a bare socket, closed whatever happens ------------------------


def test_plain_probes_leave_no_socket_open_on_timeout_reset_or_success(target, monkeypatch):
    """Each outcome of a plain-HTTP probe closes its socket: cut by the
    timeout (a server that never answers), cut short by the peer, and
    answered."""
    from healthchecks.probes import policy

    opened = []
    connect = policy.connect_socket

    async def recording(host, port):
        sock = await connect(host, port)
        opened.append(sock)
        return sock

    monkeypatch.setattr(policy, "connect_socket", recording)
    silent = RawTarget(b"", delay=5)
    cut_short = RawTarget(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
    try:
        for _ in range(3):
            assert probe({"url": f"http://127.0.0.1:{silent.port}/"}, timeout=0.3).summary == "timed out after 0.3s"
            cut = probe({"url": f"http://127.0.0.1:{cut_short.port}/"})
            assert cut.state == "critical" and "body ended after 7 of 100 bytes" in cut.message
            assert probe({"url": target.url("/healthz")}).state == "ok"
    finally:
        silent.close()
        cut_short.close()
    assert len(opened) == 9
    assert all(sock.fileno() == -1 for sock in opened)  # closed


def test_plain_probe_sends_a_large_body_whole(target):
    """A POST body bigger than a socket buffer is sent in full (sock_sendall
    waits for room) and the answer still read."""
    seen = []

    def echo_length(handler):
        seen.append(len(handler.body))
        return (200, "application/json", HEALTHY, 0)

    target.server.routes["/upload"] = echo_length
    body = "x" * (4 << 20)
    result = probe({"url": target.url("/upload"), "method": "POST", "body": body}, timeout=10)
    assert result.state == "ok", result.message
    assert seen == [len(body)]
