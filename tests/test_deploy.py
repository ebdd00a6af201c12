"""Deployment files: the Prometheus config and alert rules (checked and
unit-tested with Debian's promtool, then loaded by a real Prometheus that
scrapes a live console), docker-compose.yml and the Dockerfile.

Docker itself cannot run here, so the compose file is checked as data."""

import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.test import override_settings

from tests.processes import free_port

ROOT = Path(settings.BASE_DIR)
PROM_DIR = ROOT / "deploy" / "prometheus"
COMPOSE = ROOT / "docker-compose.yml"
SERVICES = {"postgres", "redis", "web", "worker", "beat", "prometheus"}


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: apt-get install prometheus (or run .ci/run)")
    return path


def _promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([_tool("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def _config_with_token_file(tmp_path: Path, token: str, target: str | None = None) -> Path:
    """The repo's prometheus.yml, with the compose secret's path
    (/run/secrets/metrics_token, which promtool insists exists) pointed at a
    real file, and optionally another scrape target."""
    token_file = tmp_path / "metrics_token"
    token_file.write_text(token)
    text = (PROM_DIR / "prometheus.yml").read_text()
    assert "/run/secrets/metrics_token" in text
    text = text.replace("/run/secrets/metrics_token", str(token_file))
    if target:
        assert '"web:8000"' in text
        text = text.replace('"web:8000"', f'"{target}"').replace("scrape_interval: 15s", "scrape_interval: 1s")
        text = text.replace("evaluation_interval: 15s", "evaluation_interval: 1s")
    shutil.copy(PROM_DIR / "rules.yml", tmp_path / "rules.yml")
    config = tmp_path / "prometheus.yml"
    config.write_text(text)
    return config


def test_promtool_checks_the_config_syntax():
    result = _promtool("check", "config", "--syntax-only", "deploy/prometheus/prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_checks_the_config_with_its_rule_files(tmp_path):
    config = _config_with_token_file(tmp_path, "token")
    result = _promtool("check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in result.stdout


def test_promtool_checks_the_rules():
    result = _promtool("check", "rules", "deploy/prometheus/rules.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    names = {
        rule["alert"]
        for group in yaml.safe_load((PROM_DIR / "rules.yml").read_text())["groups"]
        for rule in group["rules"]
    }
    assert {"ApplicationDown", "HighErrorRate", "HighResponseTime"} <= names


def test_alert_rules_fire_as_the_guide_says():
    """promtool's unit tests: down 2m, >5 % 5xx for 5m, p95 > 2 s for 5m, ..."""
    result = _promtool("test", "rules", "rules.test.yml", cwd=PROM_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def _alerts() -> dict[str, dict]:
    return {
        rule["alert"]: rule
        for group in yaml.safe_load((PROM_DIR / "rules.yml").read_text())["groups"]
        for rule in group["rules"]
    }


def test_every_alert_has_a_unit_test_that_fires_it_and_one_that_does_not():
    """rules.test.yml: for each alert, a case expecting it to fire and a case
    (earlier, or other input) expecting silence, so a threshold or `for` that
    drifts fails promtool's run above."""
    cases = [
        case
        for test in yaml.safe_load((PROM_DIR / "rules.test.yml").read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]
    fires = {case["alertname"] for case in cases if case["exp_alerts"]}
    silent = {case["alertname"] for case in cases if not case["exp_alerts"]}
    alerts = set(_alerts())
    assert alerts - fires == set(), f"alerts no test expects to fire: {alerts - fires}"
    assert alerts - silent == set(), f"alerts no test expects to stay silent: {alerts - silent}"
    assert fires | silent <= alerts, f"tests of alerts that do not exist: {(fires | silent) - alerts}"
    assert {
        "ApplicationDown",
        "HighErrorRate",
        "HighResponseTime",
        "CeleryQueueBacklog",
        "CeleryTaskFailures",
        "CheckCritical",
        "CertificateExpiringSoon",
        "HeartbeatMissing",
        "EscalationsOverdue",
        "AuditChainBroken",
    } <= alerts


def exported_metric_names(client) -> set[str]:
    """Every series name /metrics can export (from its # TYPE lines, which
    prometheus-client writes even for a family without samples), plus `up`,
    which Prometheus adds itself."""
    body = client.get("/metrics").content.decode()
    names = {"up"}
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", body, re.M):
        names.add(name)
        if kind == "counter":
            names.add(f"{name}_total")
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names


def metric_names_in(expr: str) -> set[str]:
    """Series names an expression selects (`name{` or `name[`), not functions."""
    return set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?=\{|\[)", expr))


@pytest.mark.django_db
def test_rules_use_the_metric_names_the_console_exports(client):
    exported = exported_metric_names(client)
    assert {"celery_queue_length", "opsconsole_watchdog_overdue", "probe_ssl_earliest_cert_expiry"} <= exported
    for name, rule in _alerts().items():
        used = metric_names_in(rule["expr"])
        assert used, f"{name}: no metric found in {rule['expr']}"
        assert used <= exported, f"{name} uses metrics /metrics does not export: {used - exported}"


def _query(base: str, promql: str) -> list:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)["data"]["result"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_real_prometheus_scrapes_the_console_with_the_token(live_server, tmp_path):
    token = "scrape-token-123"
    target = live_server.url.removeprefix("http://")
    config = _config_with_token_file(tmp_path, token, target=target)
    port = free_port()
    log = open(tmp_path / "prometheus.log", "w")
    with override_settings(METRICS_TOKEN=token):
        process = subprocess.Popen(
            [
                _tool("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline, up, requests = time.monotonic() + 45, [], []
            while time.monotonic() < deadline:
                try:
                    up = _query(base, 'up{job="opsconsole"}')
                    requests = _query(base, 'http_requests_total{job="opsconsole", view="metrics"}')
                except OSError:
                    pass
                if up and up[0]["value"][1] == "1" and requests:
                    break
                time.sleep(0.5)
            with urllib.request.urlopen(f"{base}/api/v1/rules", timeout=5) as response:
                groups = json.load(response)["data"]["groups"]
        finally:
            process.terminate()
            process.wait(timeout=30)
            log.close()
    assert up and up[0]["value"][1] == "1", (tmp_path / "prometheus.log").read_text()[-3000:]
    assert requests[0]["metric"]["status"] == "200"  # the scrapes themselves, authorised
    rules = {rule["name"]: rule["health"] for group in groups for rule in group["rules"]}
    assert len(rules) == len(_alerts()) and set(rules.values()) == {"ok"}


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _read_by_settings() -> set[str]:
    """Environment variables read by settings.py and gunicorn.conf.py."""
    sources = (ROOT / "opsconsole" / "settings.py").read_text()
    sources += (ROOT / "gunicorn.conf.py").read_text()
    patterns = [
        r"env\.\w+\(\s*[\"']([A-Z_]+)[\"']",
        r"os\.environ(?:\.get|\.setdefault)?\(\s*[\"']([A-Z_]+)[\"']",
        r"os\.environ\[[\"']([A-Z_]+)[\"']\]",
    ]
    return {name for pattern in patterns for name in re.findall(pattern, sources)}


def test_compose_names_the_services_and_the_settings_environment():
    compose = _compose()
    assert set(compose["services"]) == SERVICES
    read = _read_by_settings()
    for name in ("web", "worker", "beat"):
        env = compose["services"][name]["environment"]
        for required in (
            "DEBUG",
            "SECRET_KEY",
            "DATABASE_URL",
            "REDIS_URL",
            "CELERY_BROKER_URL",
            "ALLOWED_HOSTS",
            "METRICS_TOKEN",
            "TIME_ZONE",
            "EMAIL_URL",
        ):
            assert required in env, f"{name} lacks {required}"
        unknown = set(env) - read
        assert not unknown, f"{name} sets variables nothing reads: {unknown}"
        assert env["DEBUG"] == "false"
        assert "postgres:5432" in env["DATABASE_URL"] and "redis:6379" in env["REDIS_URL"]
    assert "PROMETHEUS_MULTIPROC_DIR" in compose["services"]["web"]["environment"]
    assert "gunicorn -c gunicorn.conf.py" in " ".join(compose["services"]["web"]["command"])
    assert "worker" in compose["services"]["worker"]["command"][-1]
    assert "beat" in compose["services"]["beat"]["command"]


def test_compose_prometheus_uses_the_repo_config_and_scrapes_web():
    compose = _compose()
    prometheus = compose["services"]["prometheus"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    assert prometheus["secrets"] == ["metrics_token"]
    assert compose["secrets"]["metrics_token"] == {"environment": "METRICS_TOKEN"}
    config = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "opsconsole")
    assert job["static_configs"][0]["targets"] == ["web:8000"]
    assert job["metrics_path"] == "/metrics"
    # Prometheus sends Host: web:8000 — Django must accept it.
    assert compose["services"]["web"]["environment"]["ALLOWED_HOSTS"].endswith(",web")


def test_dockerfile_builds_from_python_slim_installs_and_collects_static():
    text = (ROOT / "Dockerfile").read_text()
    assert text.startswith("# ") and "FROM python:3.11-slim" in text
    assert "pip install --no-deps -e ." in text
    assert "manage.py collectstatic --noinput" in text
    assert re.search(r"^USER \w+", text, re.M), "the image must not run as root"
    assert '"gunicorn", "-c", "gunicorn.conf.py"' in text


def _queues_in(command: str) -> set[str]:
    match = re.search(r"--queues[ =](\S+)", command)
    return set(match.group(1).split(",")) if match else set()


def test_workers_consume_every_routed_queue():
    """A queue nobody consumes silently holds its tasks forever."""
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    routed.add(settings.CELERY_TASK_DEFAULT_QUEUE)
    compose_worker = _compose()["services"]["worker"]["command"][-1]
    procfile_worker = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("worker:"))
    assert routed <= _queues_in(compose_worker), compose_worker
    assert routed <= _queues_in(procfile_worker), procfile_worker
