"""The probe target policy: denied networks are refused for every probe type,
after DNS resolution, and the connection goes to the address that was checked
(a rebinding DNS answer cannot swap it)."""

from __future__ import annotations

import json
import socket

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

from healthchecks.models import Check, CheckResult
from healthchecks.probes import policy
from opsconsole.roles import Role
from tests.healthchecks.factories import make_check, make_service
from tests.healthchecks.targets import CertificateAuthority, HttpTarget, json_route, redirect
from tests.healthchecks.test_probes import dns_server, probe  # noqa: F401 (fixture)

REFUSED = policy.REFUSED_SUMMARY
WITH_LOOPBACK = ["link-local", "metadata", "loopback"]


@pytest.fixture
def target():
    server = HttpTarget({"/healthz": json_route({"status": "healthy"})})
    yield server
    server.close()


@pytest.fixture
def pg_dsn(db):
    from django.db import connection

    s = connection.settings_dict
    return f"postgresql://{s['USER']}:{s.get('PASSWORD') or ''}@{{host}}:{s['PORT'] or 5432}/{s['NAME']}"


def _kubeconfig(server: str) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "t",
            "clusters": [{"name": "t", "cluster": {"server": server}}],
            "users": [{"name": "u", "user": {"token": "probe-token"}}],
            "contexts": [{"name": "t", "context": {"cluster": "t", "user": "u"}}],
        }
    )


def _deployment_routes(server: HttpTarget) -> None:
    from tests.healthchecks.test_probes_platform import _deployment, _pods

    server.server.routes["/apis/apps/v1/namespaces/prod/deployments/web"] = json_route(_deployment(1, 1))
    server.server.routes["/api/v1/namespaces/prod/pods"] = json_route(_pods([0]))


# --- the setting ---------------------------------------------------------------------------


def test_aliases_and_networks_parse_and_bad_entries_are_named():
    networks = policy.parse_networks(["link-local", "10.0.0.0/8", " ", "METADATA"])
    assert [str(n) for n in networks][:3] == ["169.254.0.0/16", "fe80::/10", "10.0.0.0/8"]
    assert "100.100.100.200/32" in map(str, networks) and "fd00:ec2::254/128" in map(str, networks)
    with pytest.raises(ValueError, match="'intranet' is neither a network"):
        policy.parse_networks(["intranet"])


def test_a_bad_setting_stops_start_up(settings):
    from healthchecks.apps import _check_probe_settings

    settings.HEALTHCHECK_DENY_NETWORKS = ["10.0.0.0/33"]
    with pytest.raises(ImproperlyConfigured, match="HEALTHCHECK_DENY_NETWORKS"):
        _check_probe_settings()
    settings.HEALTHCHECK_DENY_NETWORKS = ["link-local"]
    settings.HEALTHCHECK_FILES_DIR = "relative/dir"
    with pytest.raises(ImproperlyConfigured, match="absolute path"):
        _check_probe_settings()


@pytest.mark.parametrize(
    "address, denied",
    [
        ("169.254.169.254", "169.254.0.0/16"),
        ("::ffff:169.254.169.254", "169.254.0.0/16"),  # IPv4-mapped
        ("64:ff9b::a9fe:a9fe", "169.254.0.0/16"),  # NAT64 of 169.254.169.254
        ("fe80::1%eth0", "fe80::/10"),
        ("100.100.100.200", "100.100.100.200/32"),
        ("fd00:ec2::254", "fd00:ec2::254/128"),
        ("127.0.0.1", None),  # loopback and private ranges are allowed by default
        ("10.1.2.3", None),
        ("::1", None),
    ],
)
def test_default_policy(address, denied):
    network = policy.denied_by(address)
    assert (str(network) if network else None) == denied


def test_loopback_alias_covers_unspecified_addresses(settings):
    settings.HEALTHCHECK_DENY_NETWORKS = WITH_LOOPBACK
    assert all(policy.denied_by(a) for a in ("127.0.0.1", "127.9.9.9", "::1", "0.0.0.0", "::", "::ffff:127.0.0.1"))


# --- every probe type refuses the metadata service by default ---------------------------------


@pytest.mark.parametrize(
    "kind, config",
    [
        ("http", {"url": "http://169.254.169.254/latest/meta-data/"}),
        ("http", {"url": "http://[fd00:ec2::254]/latest/meta-data/"}),
        ("http", {"url": "http://100.100.100.200/latest/meta-data/"}),
        ("http", {"url": "http://[::ffff:169.254.169.254]/"}),
        ("tcp", {"host": "169.254.169.254", "port": 80}),
        ("tls", {"host": "169.254.169.254", "port": 443}),
        ("dns", {"name": "example.com", "nameserver": "169.254.169.253"}),
        ("postgres", {"dsn": "postgresql://u@169.254.169.254:5432/db", "query": "SELECT 1"}),
        ("postgres", {"dsn": "host=db.example hostaddr=169.254.169.254 dbname=x", "query": "SELECT 1"}),
        ("redis", {"url": "redis://169.254.169.254:6379/0"}),
        ("redis", {"url": "redis://169.254.169.254:6379/0", "mode": "list", "key": "queues:default"}),
        ("prometheus", {"url": "http://169.254.169.254:9090", "query": "up"}),
        ("kubernetes", {"kubeconfig_content": _kubeconfig("https://169.254.169.254:6443"), "deployment": "web"}),
    ],
)
def test_every_probe_type_refuses_the_metadata_service(kind, config):
    result = probe(kind, config, timeout=15)  # refusals are instant; the kubernetes import may not be
    assert result.state == "critical"
    assert "in the denied network" in result.message and "HEALTHCHECK_DENY_NETWORKS" in result.message
    assert result.summary == REFUSED


# --- configurable: with loopback denied, the local targets are refused ---------------------


def test_http_tcp_tls_prometheus_refuse_loopback_names_and_addresses(settings, target, tmp_path):
    settings.HEALTHCHECK_DENY_NETWORKS = WITH_LOOPBACK
    for kind, config in [
        ("http", {"url": target.url("/healthz")}),
        ("http", {"url": target.url("/healthz", host="localhost")}),  # a name, resolved then checked
        ("http", {"url": target.url("/healthz", host="[::1]")}),
        ("tcp", {"host": "localhost", "port": target.port}),
        ("tls", {"host": "127.0.0.1", "port": target.port, "verify_tls": False}),
        ("prometheus", {"url": f"http://localhost:{target.port}", "query": "up"}),
    ]:
        result = probe(kind, config)
        assert result.summary == REFUSED, (kind, config, result.message)
        assert "denied network 127.0.0.0/8" in result.message or "denied network ::1/128" in result.message
    assert target.server.requests == []  # nothing reached the target


def test_redis_postgres_dns_kubernetes_refuse_loopback(settings, target, pg_dsn, dns_server):  # noqa: F811
    settings.HEALTHCHECK_DENY_NETWORKS = WITH_LOOPBACK
    _deployment_routes(target)
    cases = [
        ("redis", {"url": settings.REDIS_URL}),
        ("redis", {"url": "unix:///var/run/redis/redis.sock"}),
        ("postgres", {"dsn": pg_dsn.format(host="127.0.0.1"), "query": "SELECT 1"}),
        ("postgres", {"dsn": pg_dsn.format(host="localhost"), "query": "SELECT 1"}),
        ("postgres", {"dsn": pg_dsn.format(host="") + "?host=/var/run/postgresql", "query": "SELECT 1"}),
        ("dns", {"name": "api.internal", "nameserver": "127.0.0.1", "port": dns_server}),
        (
            "kubernetes",
            {
                "kubeconfig_content": _kubeconfig(f"http://localhost:{target.port}"),
                "namespace": "prod",
                "deployment": "web",
            },
        ),
    ]
    for kind, config in cases:
        result = probe(kind, config, timeout=15)
        assert result.summary == REFUSED, (kind, config, result.message)
    assert target.server.requests == []
    # The same targets are allowed under the default policy.
    settings.HEALTHCHECK_DENY_NETWORKS = ["link-local", "metadata"]
    for kind, config in cases[:1] + cases[2:4] + cases[5:]:
        result = probe(kind, config, timeout=15)
        assert result.state == "ok", (kind, result.message)


def test_every_redirect_hop_goes_through_the_policy(target, rebinding_dns):
    answers, _lookups = rebinding_dns
    answers["metadata.test"] = ["169.254.169.254"]
    target.server.routes["/to-metadata"] = redirect("http://169.254.169.254/latest/meta-data/")
    target.server.routes["/to-name"] = redirect("http://metadata.test/latest/meta-data/")
    for path in ("/to-metadata", "/to-name"):
        result = probe("http", {"url": target.url(path)})
        assert result.state == "critical" and result.summary == REFUSED, result.message
        assert "169.254.169.254, in the denied network 169.254.0.0/16" in result.message


# --- DNS rebinding: the checked address is the connected address ---------------------------


@pytest.fixture
def rebinding_dns(monkeypatch):
    """A hostile resolver: `answers[name]` is the list of answers it gives, one
    per lookup (the last one repeats). Everything else resolves normally."""
    real = socket.getaddrinfo
    answers: dict[str, list[str]] = {}
    lookups: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        address = answers[host].pop(0) if len(answers[host]) > 1 else answers[host][0]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, int(port or 0)))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers, lookups


def test_http_connects_to_the_address_it_checked(rebinding_dns, target):
    answers, lookups = rebinding_dns
    answers["rebind.test"] = ["127.0.0.1", "169.254.169.254"]
    result = probe("http", {"url": target.url("/healthz", host="rebind.test")})
    assert result.state == "ok", result.message
    assert lookups == ["rebind.test"]  # resolved once: the second (hostile) answer is never asked for
    assert target.server.requests[0][2]["Host"] == f"rebind.test:{target.port}"
    answers["evil.test"] = ["169.254.169.254", "127.0.0.1"]
    assert probe("http", {"url": target.url("/healthz", host="evil.test")}).summary == REFUSED
    assert len(target.server.requests) == 1


def test_tcp_tls_redis_postgres_kubernetes_connect_to_the_checked_address(
    rebinding_dns, target, settings, pg_dsn, tmp_path
):
    answers, lookups = rebinding_dns
    settings.HEALTHCHECK_FILES_DIR = str(tmp_path)
    ca = CertificateAuthority(tmp_path)
    tls_target = HttpTarget({"/": json_route({})}, context=ca.issue(days=90))
    _deployment_routes(target)
    redis_url = settings.REDIS_URL.replace("127.0.0.1", "rebind.test").replace("localhost", "rebind.test")
    try:
        for kind, config in [
            ("tcp", {"host": "rebind.test", "port": target.port}),
            (
                "tls",
                {
                    "host": "rebind.test",
                    "port": tls_target.port,
                    "server_name": "localhost",
                    "ca_file": ca.ca_file.name,
                },
            ),
            ("redis", {"url": redis_url}),
            ("postgres", {"dsn": pg_dsn.format(host="rebind.test"), "query": "SELECT 1"}),
            (
                "kubernetes",
                {
                    "kubeconfig_content": _kubeconfig(f"http://rebind.test:{target.port}"),
                    "deployment": "web",
                    "namespace": "prod",
                },
            ),
        ]:
            answers["rebind.test"] = ["127.0.0.1", "169.254.169.254"]
            lookups.clear()
            result = probe(kind, config, timeout=15)  # generous: the kubernetes import on a busy machine
            assert result.state == "ok", (kind, result.message)
            assert lookups == ["rebind.test"], kind
    finally:
        tls_target.close()


# --- forms and "Run now" -------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "data, field",
    [
        ({"kind": "http", "url": "http://169.254.169.254/latest/meta-data/"}, "url"),
        ({"kind": "http", "url": "http://[fe80::1]/"}, "url"),
        ({"kind": "tcp", "host": "169.254.169.254", "port": 80}, "host"),
        ({"kind": "tls", "host": "[fd00:ec2::254]"}, "host"),
        ({"kind": "dns", "dns_name": "example.com", "nameserver": "169.254.169.253"}, "nameserver"),
        ({"kind": "redis", "url": "redis://100.100.100.200:6379/0"}, "url"),
        ({"kind": "prometheus", "url": "http://169.254.169.254:9090", "query": "up"}, "url"),
        ({"kind": "postgres", "dsn": "postgresql://u@169.254.169.254/db", "query": "SELECT 1"}, "dsn"),
        ({"kind": "postgres", "dsn": "host=db hostaddr=fe80::1 dbname=x", "query": "SELECT 1"}, "dsn"),
    ],
)
def test_the_form_refuses_denied_addresses(client_as, data, field):
    client = client_as(Role.SRE)
    response = client.post(
        reverse("healthchecks:create"),
        {
            "name": "x",
            "service": make_service().pk,
            "interval_seconds": 60,
            "timeout_seconds": 5,
            "consecutive_needed": 2,
            **data,
        },
    )
    assert response.status_code == 200
    assert "in the denied network" in " ".join(response.context["form"].errors[field])
    assert not Check.objects.exists()


@pytest.mark.django_db
def test_run_now_is_refused_with_a_clear_message(client_as):
    # Saved some other way (admin, an older release): the probe refuses it too.
    check = make_check(kind="http", config={"url": "http://169.254.169.254/latest/meta-data/iam/"})
    client = client_as(Role.SRE)
    response = client.post(reverse("healthchecks:run_now", args=[check.pk]), headers={"HX-Request": "true"})
    body = response.content.decode()
    assert response.status_code == 200
    assert "169.254.169.254, in the denied network 169.254.0.0/16" in body
    result = CheckResult.objects.get(check_ref=check)
    assert (result.state, result.summary) == ("critical", REFUSED)
