"""Path fields (`ca_file`, `kubeconfig`, DSN file parameters) reach only files
under HEALTHCHECK_FILES_DIR; pasted content is the alternative, stored as a
secret, and a pasted kubeconfig cannot point at files or run programs."""

from __future__ import annotations

import json
import os

import pytest
import yaml
from django.urls import reverse

from healthchecks.models import Check
from healthchecks.probes import files
from opsconsole.models import AuditEntry
from opsconsole.roles import Role
from tests.healthchecks.factories import make_check, make_service
from tests.healthchecks.targets import CertificateAuthority, HttpTarget, json_route
from tests.healthchecks.test_probes import probe
from tests.healthchecks.test_probes_platform import _deployment, _pods

REFUSED = files.REFUSED_SUMMARY


@pytest.fixture
def probe_dir(tmp_path, settings):
    folder = tmp_path / "probe-files"
    folder.mkdir()
    settings.HEALTHCHECK_FILES_DIR = str(folder)
    return folder


def test_only_files_inside_the_directory(probe_dir, tmp_path):
    inside = probe_dir / "ca.pem"
    inside.write_text("x")
    outside = tmp_path / "secret.txt"
    outside.write_text("s3cr3t")
    (probe_dir / "link.pem").symlink_to(outside)
    (probe_dir / "sub").mkdir()
    assert files.allowed_file("ca.pem", what="CA bundle") == os.path.realpath(inside)
    assert files.allowed_file(str(inside), what="CA bundle") == os.path.realpath(inside)
    assert files.allowed_file("sub/../ca.pem", what="CA bundle") == os.path.realpath(inside)
    for path in (
        "../secret.txt",
        str(outside),
        "link.pem",
        "/etc/passwd",
        "sub/../../secret.txt",
        "/proc/self/environ",
    ):
        with pytest.raises(files.FileRefused, match="is outside"):
            files.allowed_file(path, what="CA bundle")
    for path in ("missing.pem", "sub", ""):
        with pytest.raises(files.FileRefused, match="is not a file"):
            files.allowed_file(path, what="CA bundle")


def test_no_directory_configured_refuses_every_path(settings):
    settings.HEALTHCHECK_FILES_DIR = ""
    with pytest.raises(files.FileRefused, match="paste the content instead"):
        files.allowed_file("/etc/ssl/certs/ca-certificates.crt", what="CA bundle")


# --- at probe time (a check saved through the admin or by an older release) ---------------


def test_tls_and_http_refuse_a_ca_file_outside_the_directory(probe_dir, tmp_path):
    ca = CertificateAuthority(tmp_path)  # written outside probe_dir
    target = HttpTarget({"/": json_route({})}, context=ca.issue(days=90))
    try:
        tls = probe(
            "tls", {"host": "127.0.0.1", "port": target.port, "server_name": "localhost", "ca_file": str(ca.ca_file)}
        )
        http = probe("http", {"url": target.url("/", host="localhost"), "ca_file": "/etc/passwd"})
        (probe_dir / "ca.pem").write_bytes(ca.ca_file.read_bytes())
        allowed = probe(
            "tls", {"host": "127.0.0.1", "port": target.port, "server_name": "localhost", "ca_file": "ca.pem"}
        )
        pasted = probe("http", {"url": target.url("/", host="localhost"), "ca_pem": ca.ca_file.read_text()})
    finally:
        target.close()
    assert (tls.state, tls.summary) == ("critical", REFUSED) and "is outside" in tls.message
    assert (http.state, http.summary) == ("critical", REFUSED)
    assert allowed.state == "ok", allowed.message
    assert pasted.state == "ok", pasted.message


@pytest.fixture
def kube_api():
    server = HttpTarget(
        {
            "/apis/apps/v1/namespaces/prod/deployments/web": json_route(_deployment(2, 2)),
            "/api/v1/namespaces/prod/pods": json_route(_pods([0, 0])),
        }
    )
    server.config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "t",
        "clusters": [{"name": "t", "cluster": {"server": f"http://127.0.0.1:{server.port}"}}],
        "users": [{"name": "u", "user": {"token": "probe-token"}}],
        "contexts": [{"name": "t", "context": {"cluster": "t", "user": "u"}}],
    }
    yield server
    server.close()


def _kube(config: dict) -> object:
    return probe("kubernetes", {"namespace": "prod", "deployment": "web", **config}, timeout=15)


def test_kubeconfig_path_only_inside_the_directory(probe_dir, tmp_path, kube_api):
    outside = tmp_path / "kubeconfig"
    outside.write_text(json.dumps(kube_api.config))
    (probe_dir / "via-link").symlink_to(outside)
    (probe_dir / "prod.yaml").write_text(json.dumps(kube_api.config))
    for path in (str(outside), "via-link", "../kubeconfig"):
        result = _kube({"kubeconfig": path})
        assert (result.state, result.summary) == ("critical", REFUSED), path
    assert kube_api.server.requests == []
    result = _kube({"kubeconfig": "prod.yaml"})
    assert result.state == "ok", result.message


def test_pasted_kubeconfig_works_and_may_not_reach_files_or_run_programs(settings, kube_api, tmp_path):
    settings.HEALTHCHECK_FILES_DIR = ""
    assert _kube({"kubeconfig_content": yaml.safe_dump(kube_api.config)}).state == "ok"
    marker = tmp_path / "ran"
    hostile = [
        (
            "users",
            {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "touch", "args": [str(marker)]}},
        ),
        ("users", {"tokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token"}),
        ("users", {"client-key": "/etc/ssl/private/key.pem", "client-certificate": "/etc/ssl/cert.pem"}),
        ("users", {"auth-provider": {"name": "oidc", "config": {}}}),
        ("clusters", {"certificate-authority": "/etc/passwd", "server": f"https://127.0.0.1:{kube_api.port}"}),
        ("clusters", {"proxy-url": "http://169.254.169.254:80", "server": f"http://127.0.0.1:{kube_api.port}"}),
    ]
    for section, body in hostile:
        config = json.loads(json.dumps(kube_api.config))
        config[section][0][section[:-1]].update(body)
        result = _kube({"kubeconfig_content": json.dumps(config)})
        assert (result.state, result.summary) == ("critical", REFUSED), body
    assert not marker.exists()
    assert len(kube_api.server.requests) == 2  # deployment and pods of the first, allowed probe only


def test_dsn_file_parameters_are_confined(probe_dir):
    for dsn in (
        "postgresql://u@127.0.0.1:1/db?sslrootcert=/etc/passwd&sslmode=verify-full",
        "host=127.0.0.1 dbname=x passfile=/root/.pgpass",
        "host=127.0.0.1 dbname=x service=prod",
    ):
        result = probe("postgres", {"dsn": dsn, "query": "SELECT 1"})
        assert (result.state, result.summary) == ("critical", REFUSED), dsn


def test_redis_url_parameters_naming_files_are_refused():
    result = probe("redis", {"url": "rediss://127.0.0.1:1/0?ssl_ca_certs=/etc/passwd"})
    assert result.state == "critical" and "ssl_ca_certs" in result.message


# --- the form --------------------------------------------------------------------------


def _post(client, **data):
    return client.post(
        reverse("healthchecks:create"),
        {
            "name": "k8s web",
            "service": make_service().pk,
            "interval_seconds": 60,
            "timeout_seconds": 5,
            "consecutive_needed": 2,
            **data,
        },
    )


@pytest.mark.django_db
def test_the_form_refuses_paths_outside_the_directory(client_as, probe_dir):
    client = client_as(Role.SRE)
    for data, field, message in [
        (
            {"kind": "tls", "host": "example.com", "ca_file": "/etc/ssl/certs/ca-certificates.crt"},
            "ca_file",
            "is outside",
        ),
        ({"kind": "http", "url": "https://example.com/", "ca_file": "../../etc/passwd"}, "ca_file", "is outside"),
        (
            {"kind": "kubernetes", "namespace": "prod", "deployment": "web", "kubeconfig": "/root/.kube/config"},
            "kubeconfig",
            "is outside",
        ),
        (
            {
                "kind": "kubernetes",
                "namespace": "prod",
                "deployment": "web",
                "kubeconfig_content": "clusters: []\nusers:\n- name: u\n  user:\n    exec: {command: id}\n",
            },
            "kubeconfig_content",
            "uses 'exec'",
        ),
        ({"kind": "http", "url": "https://example.com/", "ca_pem": "not a certificate"}, "ca_pem", "PEM"),
        (
            {"kind": "postgres", "dsn": "host=db dbname=x sslkey=/etc/ssl/private/k", "query": "SELECT 1"},
            "dsn",
            "is outside",
        ),
    ]:
        response = _post(client, **data)
        assert response.status_code == 200, data
        assert message in " ".join(response.context["form"].errors[field]), response.context["form"].errors
    assert not Check.objects.exists()


@pytest.mark.django_db
def test_a_pasted_kubeconfig_is_a_secret_kept_on_edit(client_as, kube_api):
    client = client_as(Role.SRE)
    pasted = yaml.safe_dump(kube_api.config).strip()  # forms strip surrounding whitespace
    response = _post(client, kind="kubernetes", namespace="prod", deployment="web", kubeconfig_content=pasted)
    assert response.status_code == 302
    check = Check.objects.get()
    assert check.config["kubeconfig_content"] == pasted
    entry = AuditEntry.objects.get(action="healthchecks.check_create")
    assert entry.after["config"]["kubeconfig_content"] == "***"
    page = client.get(reverse("healthchecks:edit", args=[check.pk])).content.decode()
    assert "probe-token" not in page  # never sent back to the browser
    edit = {
        "name": "k8s web",
        "service": check.service_id,
        "kind": "kubernetes",
        "namespace": "prod",
        "deployment": "api",
        "interval_seconds": 60,
        "timeout_seconds": 5,
        "consecutive_needed": 2,
    }
    client.post(reverse("healthchecks:edit", args=[check.pk]), edit)
    check.refresh_from_db()
    assert check.config["deployment"] == "api" and check.config["kubeconfig_content"] == pasted
    client.post(reverse("healthchecks:edit", args=[check.pk]), {**edit, "forget_kubeconfig": "on"})
    check.refresh_from_db()
    assert "kubeconfig_content" not in check.config


@pytest.mark.django_db
def test_admin_audit_masks_pasted_content(client_as):
    from healthchecks.services import mask_config

    check = make_check(kind="kubernetes", config={"kubeconfig_content": "token: abc", "deployment": "web"})
    assert mask_config(check.config) == {"kubeconfig_content": "***", "deployment": "web"}
