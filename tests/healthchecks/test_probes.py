"""Every probe against a real local target, and every failure mode ending
in a clear message (never an exception)."""

from __future__ import annotations

import asyncio
import datetime
import threading

import pytest

from healthchecks.probes import ProbeSpec, run_probe
from tests.healthchecks.targets import (
    CertificateAuthority,
    HttpTarget,
    RawTarget,
    json_route,
)
from tests.processes import free_port

HEALTHY = {
    "status": "healthy",
    "checks": {"database": {"status": "healthy"}, "redis": {"status": "degraded"}},
}


def probe(kind: str, config: dict, *, timeout: float = 2.0, warning=None, critical=None, **extra):
    spec = ProbeSpec(
        check_id=1,
        kind=kind,
        config=config,
        timeout=timeout,
        warning=warning,
        critical=critical,
        **extra,
    )
    return asyncio.run(run_probe(spec))


@pytest.fixture
def http_target():
    target = HttpTarget(
        {
            "/healthz": json_route(HEALTHY),
            "/slow": json_route(HEALTHY, delay=0.3),
            "/hang": json_route(HEALTHY, delay=3),
            "/error": (500, "text/plain", "boom", 0),
            "/html": (200, "text/html", "<html>hello world</html>", 0),
        }
    )
    yield target
    target.close()


def test_http_json_path_equals_passes(http_target):
    result = probe(
        "http",
        {"url": http_target.url("/healthz"), "json_path": "status", "json_equals": "healthy"},
    )
    assert result.state == "ok", result.message
    assert result.details["http_status"] == 200
    assert result.message.startswith("HTTP 200 in ")
    assert result.latency_ms > 0


def test_http_json_path_mismatch_is_critical(http_target):
    result = probe(
        "http",
        {
            "url": http_target.url("/healthz"),
            "json_path": "checks.redis.status",
            "json_equals": "healthy",
        },
    )
    assert result.state == "critical"
    assert result.message == "checks.redis.status is 'degraded', expected 'healthy'"


def test_http_sends_method_and_headers(http_target):
    probe(
        "http",
        {"url": http_target.url("/healthz"), "method": "post", "headers": {"X-Probe": "yes"}},
    )
    method, path, headers = http_target.server.requests[-1]
    assert (method, path, headers["X-Probe"]) == ("POST", "/healthz", "yes")


def test_http_unexpected_status_is_critical(http_target):
    result = probe("http", {"url": http_target.url("/error")})
    assert (result.state, result.message) == ("critical", "HTTP 500, expected 2xx/3xx")
    assert probe("http", {"url": http_target.url("/error"), "expected_status": [500]}).state == "ok"


def test_http_body_contains(http_target):
    assert probe("http", {"url": http_target.url("/html"), "body_contains": "hello"}).state == "ok"
    result = probe("http", {"url": http_target.url("/html"), "body_contains": "goodbye"})
    assert result.state == "critical" and "does not contain 'goodbye'" in result.message


def test_http_body_not_json_is_a_clear_message(http_target):
    result = probe("http", {"url": http_target.url("/html"), "json_path": "status", "json_equals": "healthy"})
    assert result.state == "critical" and "body is not JSON" in result.message


def test_http_latency_thresholds(http_target):
    result = probe("http", {"url": http_target.url("/slow")}, warning=100, critical=5000)
    assert result.state == "warning"
    assert "above the warning threshold 100 ms" in result.message
    result = probe("http", {"url": http_target.url("/slow")}, warning=50, critical=100)
    assert result.state == "critical"


def test_http_timeout(http_target):
    result = probe("http", {"url": http_target.url("/hang")}, timeout=0.5)
    assert (result.state, result.message) == ("critical", "timed out after 0.5s")


def test_http_connection_refused():
    result = probe("http", {"url": f"http://127.0.0.1:{free_port()}/"})
    assert (result.state, result.message) == ("critical", "connection refused")


@pytest.mark.parametrize(
    "payload, expected",
    [
        (b"garbage\r\n\r\n", "malformed HTTP response: status line"),
        (b"", "malformed HTTP response: the server closed the connection without answering"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort",
            "malformed HTTP response: body ended after 5 of 50 bytes",
        ),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed HTTP response: header line"),
    ],
)
def test_http_malformed_responses(payload, expected):
    target = RawTarget(payload)
    try:
        result = probe("http", {"url": f"http://127.0.0.1:{target.port}/"})
    finally:
        target.close()
    assert result.state == "critical"
    assert result.message.startswith(expected), result.message


def test_https_records_certificate_expiry(tmp_path, settings):
    settings.HEALTHCHECK_FILES_DIR = str(tmp_path)  # CA bundles must live there
    ca = CertificateAuthority(tmp_path)
    target = HttpTarget({"/": json_route(HEALTHY)}, context=ca.issue(days=20))
    try:
        result = probe("http", {"url": target.url("/", host="localhost"), "ca_file": str(ca.ca_file)})
        untrusted = probe("http", {"url": target.url("/", host="localhost")})
        unverified = probe("http", {"url": target.url("/", host="localhost"), "verify_tls": False})
    finally:
        target.close()
    assert result.state == "ok", result.message
    assert abs(result.details["cert_expiry"] - ca.last_not_after.timestamp()) < 2
    assert untrusted.state == "critical"
    assert untrusted.message.startswith("TLS certificate rejected: unable to get local issuer certificate")
    assert unverified.state == "ok"


@pytest.fixture
def ca(tmp_path, settings):
    settings.HEALTHCHECK_FILES_DIR = str(tmp_path)  # CA bundles must live there
    return CertificateAuthority(tmp_path)


def _tls(ca, days, **config):
    target = HttpTarget({"/": json_route({})}, context=ca.issue(days=days))
    try:
        return probe(
            "tls",
            {
                "host": "127.0.0.1",
                "port": target.port,
                "server_name": "localhost",
                "ca_file": str(ca.ca_file),
                **config,
            },
            warning=30,
            critical=7,
        )
    finally:
        target.close()


def test_tls_days_left_ok_warning_critical(ca):
    ok = _tls(ca, 90)
    assert ok.state == "ok" and "in 90.0 days" in ok.message
    warning = _tls(ca, 20)
    assert warning.state == "warning" and "in 20.0 days (warning: renew soon)" in warning.message
    assert warning.details["days_left"] == pytest.approx(20, abs=0.01)
    critical = _tls(ca, 3)
    assert critical.state == "critical" and "renew now" in critical.message


def test_tls_expired_certificate_is_rejected(ca):
    result = _tls(ca, -2)
    assert result.state == "critical"
    assert result.message == "TLS certificate rejected: certificate has expired"


def test_tls_expired_certificate_without_verification_names_the_date(ca):
    result = _tls(ca, -2, verify_tls=False)
    assert result.state == "critical" and result.message.startswith("certificate expired on ")


def test_tls_hostname_mismatch(ca):
    result = _tls(ca, 90, server_name="api.example.com")
    assert result.state == "critical"
    assert "Hostname mismatch" in result.message and "api.example.com" in result.message


def test_tls_plain_tcp_server_is_a_handshake_failure():
    target = RawTarget(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    try:
        result = probe("tls", {"host": "127.0.0.1", "port": target.port})
    finally:
        target.close()
    assert result.state == "critical"
    assert result.message.startswith(
        ("TLS handshake failed", "connection reset", "ConnectionResetError", "network error")
    ), result.message


def test_tcp_connect_and_refused(http_target):
    assert probe("tcp", {"host": "127.0.0.1", "port": http_target.port}).state == "ok"
    result = probe("tcp", {"host": "127.0.0.1", "port": free_port()})
    assert (result.state, result.message) == ("critical", "connection refused")


def test_missing_setting_is_unknown_with_its_name():
    result = probe("tcp", {"host": "127.0.0.1"})
    assert (result.state, result.message) == ("unknown", "check is missing the setting 'port'")


# --- DNS: a real UDP server answering from a zone dict ------------------------------


@pytest.fixture
def dns_server():
    import socket

    import dns.message
    import dns.rrset

    zone = {"api.internal.": ["10.0.0.5", "10.0.0.6"]}
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                wire, address = sock.recvfrom(4096)
            except OSError:
                continue
            query = dns.message.from_wire(wire)
            response = dns.message.make_response(query)
            question = query.question[0]
            name = question.name.to_text()
            if name == "slow.internal.":
                continue  # never answer: the probe must time out
            if name in zone:
                response.answer.append(dns.rrset.from_text_list(name, 60, "IN", "A", zone[name]))
            else:
                response.set_rcode(dns.rcode.NXDOMAIN)
            sock.sendto(response.to_wire(), address)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join()
    sock.close()


def test_dns_resolves_expected_addresses(dns_server):
    config = {"name": "api.internal", "nameserver": "127.0.0.1", "port": dns_server}
    result = probe("dns", {**config, "expected": ["10.0.0.5"]})
    assert result.state == "ok" and result.message == "api.internal → 10.0.0.5, 10.0.0.6"
    missing = probe("dns", {**config, "expected": ["10.0.0.9"]})
    assert missing.state == "critical" and "expected 10.0.0.9 missing" in missing.message


def test_dns_nxdomain_and_timeout(dns_server):
    result = probe("dns", {"name": "nope.internal", "nameserver": "127.0.0.1", "port": dns_server})
    assert result.message == "nope.internal does not exist (NXDOMAIN)"
    result = probe("dns", {"name": "slow.internal", "nameserver": "127.0.0.1", "port": dns_server}, timeout=0.5)
    assert result.state == "critical" and ("did not answer" in result.message or "timed out" in result.message)


# --- PostgreSQL and Redis: the real servers -----------------------------------------------


@pytest.fixture
def pg_dsn(db):
    from django.db import connection

    s = connection.settings_dict
    host, port = s["HOST"] or "127.0.0.1", s["PORT"] or 5432
    return f"postgresql://{s['USER']}:{s.get('PASSWORD') or ''}@{host}:{port}/{s['NAME']}"


def test_postgres_query_value_against_thresholds(pg_dsn):
    assert probe("postgres", {"dsn": pg_dsn, "query": "SELECT 42"}, warning=50, critical=90).state == "ok"
    result = probe("postgres", {"dsn": pg_dsn, "query": "SELECT 85.5"}, warning=80, critical=95)
    assert result.state == "warning" and result.message == "query value 85.5 is above the warning threshold 80"
    connections = probe(
        "postgres",
        {
            "dsn": pg_dsn,
            "query": "SELECT 100.0 * count(*) / current_setting('max_connections')::int FROM pg_stat_activity",
        },
        warning=80,
        critical=95,
    )
    assert connections.state == "ok" and 0 < connections.details["value"] < 80


def test_postgres_statement_timeout(pg_dsn):
    result = probe("postgres", {"dsn": pg_dsn, "query": "SELECT pg_sleep(5)"}, timeout=1)
    assert result.state == "critical"
    assert result.message == "query cancelled by statement_timeout (900 ms)"


def test_postgres_is_read_only(pg_dsn):
    result = probe("postgres", {"dsn": pg_dsn, "query": "CREATE TABLE probe_wrote_this (id int)"})
    assert result.message == "only a SELECT (or WITH … SELECT) query may run: checks run read-only"
    result = probe("postgres", {"dsn": pg_dsn, "query": "WITH x AS (DELETE FROM django_session RETURNING 1) SELECT 1"})
    assert result.message == "the query tried to write: checks run read-only"


def test_postgres_failures_are_clear(pg_dsn):
    refused = probe("postgres", {"dsn": f"postgresql://postgres@127.0.0.1:{free_port()}/x"})
    assert refused.state == "critical" and refused.message.startswith("cannot connect to PostgreSQL")
    missing_db = probe("postgres", {"dsn": pg_dsn.rsplit("/", 1)[0] + "/no_such_database_here"})
    assert 'database "no_such_database_here" does not exist' in missing_db.message
    not_number = probe("postgres", {"dsn": pg_dsn, "query": "SELECT 'abc'"})
    assert not_number.message == "the query returned 'abc', not a number"


@pytest.fixture
def redis_url(redis_client, worker_id_suffix):
    from django.conf import settings

    yield settings.REDIS_URL
    redis_client.delete(f"queues:default{worker_id_suffix}")


def test_redis_ping_memory_and_queue_depth(redis_url, redis_client, worker_id_suffix):
    assert probe("redis", {"url": redis_url}).message.startswith("PONG in ")
    memory = probe("redis", {"url": redis_url, "mode": "memory"}, warning=75, critical=90)
    assert memory.state == "ok" and 0 < memory.details["value"] < 75
    key = f"queues:default{worker_id_suffix}"
    redis_client.delete(key)
    redis_client.rpush(key, *range(1200))
    result = probe("redis", {"url": redis_url, "mode": "list", "key": key}, warning=1000, critical=5000)
    assert result.state == "warning"
    assert result.message == f"length of {key} 1200 is above the warning threshold 1000"


def test_redis_refused_and_wrong_type(redis_url, redis_client, worker_id_suffix):
    result = probe("redis", {"url": f"redis://127.0.0.1:{free_port()}/5"})
    assert result.state == "critical" and result.message.startswith("cannot connect to Redis")
    key = f"queues:default{worker_id_suffix}"
    redis_client.delete(key)
    redis_client.set(key, "x")
    result = probe("redis", {"url": redis_url, "mode": "list", "key": key})
    assert result.message == f"key '{key}' is a string, not a list"


# --- heartbeat -----------------------------------------------------------------


def _heartbeat(**extra):
    return probe("heartbeat", {"period_seconds": 3600, "grace_seconds": 600}, **extra)


def test_heartbeat_states():
    now = datetime.datetime.now(datetime.UTC)
    fine = _heartbeat(last_ping_at=now - datetime.timedelta(minutes=30))
    assert fine.state == "ok" and fine.latency_ms is None  # nothing is timed: not "0 ms"
    late = _heartbeat(last_ping_at=now - datetime.timedelta(minutes=71))
    assert late.state == "critical" and late.message == "last ping 71 min ago; expected every 60 min (+10 min grace)"
    assert _heartbeat(last_ping_at=now, last_ping_failed=True).message.startswith("the job reported a failure")
    assert _heartbeat(created_at=now).state == "unknown"
    never = _heartbeat(created_at=now - datetime.timedelta(hours=2))
    assert never.state == "critical" and "no ping received" in never.message


def test_batches_run_from_a_thread_whose_event_loop_is_running():
    from healthchecks.probes import run_batch_sync

    async def inside_a_running_loop():
        return run_batch_sync([ProbeSpec(check_id=1, kind="heartbeat", config={}, timeout=1)])

    [result] = asyncio.run(inside_a_running_loop())
    assert result.state == "unknown" and result.message == "waiting for the first ping"


def test_a_batch_larger_than_its_concurrency_keeps_order_and_the_bound(monkeypatch):
    """run_batch's runners: never more than `concurrency` probes in flight,
    every probe run once, results in the order of the specs, and a probe's
    timeout counted from its own start (not from the batch's)."""
    from healthchecks import probes
    from healthchecks.probes import ProbeResult, run_batch

    in_flight, most, started = 0, 0, []

    async def fake(spec):
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        started.append(spec.check_id)
        try:
            await asyncio.sleep(0.05 if spec.check_id % 7 else 0.01)
            return ProbeResult("ok", f"probe {spec.check_id}")
        finally:
            in_flight -= 1

    monkeypatch.setitem(probes.PROBES, "fake", fake)
    specs = [ProbeSpec(check_id=i, kind="fake", config={}, timeout=0.2) for i in range(60)]
    # 60 probes of up to 50 ms, 5 at a time: about 0.5 s in all, longer than
    # the 0.2 s timeout, yet none times out.
    results = asyncio.run(run_batch(specs, concurrency=5))
    assert most == 5
    assert sorted(started) == list(range(60))
    assert [r.message for r in results] == [f"probe {i}" for i in range(60)]
    assert asyncio.run(run_batch([], concurrency=5)) == []
