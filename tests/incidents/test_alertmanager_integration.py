"""The real Alertmanager binary routes alerts to the console's webhook.

Alerts are pushed into Alertmanager through its v2 API; Alertmanager groups
them and POSTs version-4 webhook payloads, with a bearer token, to the
live test server. We watch the incident open, gain an event, and resolve.
"""

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from incidents.models import Incident, TimelineEvent
from opsconsole.models import ApiToken, Service
from opsconsole.roles import Role
from tests.processes import free_port, wait_until

ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def alertmanager(live_server, make_user, tmp_path):
    user = make_user(Role.SRE)
    raw, prefix, token_hash = ApiToken.generate()
    ApiToken.objects.create(user=user, name="alertmanager", prefix=prefix, token_hash=token_hash)
    port = free_port()
    config = {
        "route": {
            "receiver": "console",
            "group_by": ["alertname"],
            "group_wait": "1s",
            "group_interval": "2s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "console",
                "webhook_configs": [
                    {
                        "url": f"{live_server.url}/api/alerts/alertmanager",
                        "send_resolved": True,
                        "http_config": {"authorization": {"type": "Bearer", "credentials": raw}},
                    }
                ],
            }
        ],
    }
    (tmp_path / "alertmanager.yml").write_text(json.dumps(config))  # JSON is YAML
    process = subprocess.Popen(
        [
            ALERTMANAGER,
            f"--config.file={tmp_path / 'alertmanager.yml'}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def ready():
        try:
            return httpx.get(f"{base}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return process.poll() is not None  # stop waiting if it died

    wait_until(ready, what="alertmanager to start")
    assert process.poll() is None, process.stdout.read().decode()
    yield base
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def _push(base: str, alerts: list[dict]) -> None:
    response = httpx.post(f"{base}/api/v2/alerts", json=alerts, timeout=5)
    assert response.status_code == 200, response.text


def _alert(instance: str, *, ends: datetime | None = None) -> dict:
    now = datetime.now(UTC)
    return {
        "labels": {
            "alertname": "JobQueueBacklog",
            "severity": "critical",
            "service": "message-queue",
            "instance": instance,
        },
        "annotations": {"summary": "Job queue size > 1000"},
        "startsAt": (now - timedelta(minutes=1)).isoformat(),
        "endsAt": (ends or now + timedelta(hours=1)).isoformat(),
    }


def test_alertmanager_opens_updates_and_resolves_an_incident(alertmanager):
    Service.objects.create(name="Message queue", slug="message-queue")
    first = _alert("worker-1")
    _push(alertmanager, [first])
    incident = wait_until(lambda: Incident.objects.first(), what="the incident to open")
    assert incident.severity_id == 1 and incident.source_kind == "alert"
    assert list(incident.services.values_list("slug", flat=True)) == ["message-queue"]

    _push(alertmanager, [first, _alert("worker-2")])
    wait_until(
        lambda: any("worker-2" in e.text for e in TimelineEvent.objects.filter(kind="alert")),
        what="the second alert on the timeline",
    )
    assert Incident.objects.count() == 1

    ended = datetime.now(UTC) - timedelta(seconds=1)
    _push(
        alertmanager,
        [
            {**first, "endsAt": ended.isoformat()},
            {**_alert("worker-2"), "startsAt": first["startsAt"], "endsAt": ended.isoformat()},
        ],
    )
    wait_until(
        lambda: TimelineEvent.objects.filter(incident=incident, kind="alert", data__resolved=True).exists(),
        what="the resolved notification",
    )
    assert Incident.objects.count() == 1
    assert not incident.signals.filter(firing=True).exists()
    texts = list(TimelineEvent.objects.filter(incident=incident).order_by("id").values_list("kind", flat=True))
    assert texts[0] == "declared" and texts.count("alert") >= 3
