"""Restricted incidents never leak through notifications, and webhook URLs
(credentials) are shown only as target_display."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from incidents import services as incidents
from notifications import services as notifications
from notifications.models import Delivery
from notifications.tasks import send_delivery
from oncall.models import Rotation, Shift
from opsconsole.models import AuditEntry, Service
from opsconsole.roles import Role
from tests.notifications.webhook_server import WebhookReceiver

SECRET_HOOK_PATH = "/services/T0000/B0000/s3cr3t-t0ken"


@pytest.fixture
def receiver():
    server = WebhookReceiver().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _eager_retries_run_in_line():
    from opsconsole.celery import app

    app.conf.task_eager_propagates = False
    yield


@pytest.fixture
def world(make_user, settings, receiver):
    """A service with its own chat webhook, a global webhook, someone on call who
    takes no part in the incident, and a commander who does."""
    settings.NOTIFY_WEBHOOK_URL = receiver.url + "/global"
    settings.NOTIFY_MAX_ATTEMPTS = 1
    service = Service.objects.create(name="Payments", slug="payments", webhook_url=receiver.url + "/payments")
    rotation = Rotation.objects.create(name="Primary")
    on_call = make_user(Role.SRE, email="oncall@example.com")
    now = timezone.now()
    Shift.objects.create(
        rotation=rotation,
        user=on_call,
        starts_at=now - datetime.timedelta(hours=1),
        ends_at=now + datetime.timedelta(hours=1),
    )
    commander = make_user(Role.INCIDENT_COMMANDER, email="ic@example.com")
    return {"service": service, "on_call": on_call, "commander": commander}


def _declare(world, restricted: bool):
    return incidents.incident_declare(
        actor=world["commander"],
        title="Acquisition talks leaked",
        summary="Board memo on the public bucket",
        severity=1,
        services=[world["service"]],
        restricted=restricted,
        commander=world["commander"],
    )


@pytest.mark.django_db
def test_restricted_incident_is_announced_to_participants_only_by_reference(world):
    incident = _declare(world, restricted=True)
    deliveries = list(Delivery.objects.all())

    assert deliveries, "the participants are told"
    assert {d.channel for d in deliveries} == {Delivery.Channel.EMAIL}
    assert {d.target for d in deliveries} == {"ic@example.com"}
    for delivery in deliveries:
        text = str(delivery.payload)
        assert incident.reference in text
        assert "Acquisition" not in text and "Board memo" not in text
        assert delivery.restricted and delivery.subject_id == str(incident.pk)


@pytest.mark.django_db
def test_unrestricted_incident_still_reaches_chat_and_on_call(world):
    _declare(world, restricted=False)
    targets = {d.target for d in Delivery.objects.all()}
    assert "oncall@example.com" in targets
    assert any(t.endswith("/payments") for t in targets)


@pytest.mark.django_db
def test_dead_letter_list_shows_a_restricted_payload_only_to_who_may_see_it(world, receiver, client_as, client):
    receiver.default_status = 400
    incident = _declare(world, restricted=True)
    # An old-style delivery whose payload still names the incident (made before the fix).
    (leaky,) = notifications.notify(
        event="incident.declared",
        title="Acquisition talks leaked",
        text="Board memo",
        subject=incident,
        restricted=True,
    )
    for delivery in Delivery.objects.all():
        send_delivery.delay(delivery.pk)
    assert Delivery.objects.filter(pk=leaky.pk, status=Delivery.Status.DEAD).exists()

    viewer_html = client_as(Role.VIEWER).get(reverse("notifications:dead_letters")).content.decode()
    assert "Acquisition" not in viewer_html and "Board memo" not in viewer_html
    assert "payload-hidden" in viewer_html

    client.force_login(world["commander"])
    commander_html = client.get(reverse("notifications:dead_letters")).content.decode()
    assert "Acquisition" in commander_html


@pytest.mark.django_db
def test_metrics_count_restricted_incidents_and_name_nothing(world, client):
    incident = _declare(world, restricted=True)
    body = client.get("/metrics").content.decode()
    assert 'opsconsole_incidents_open{severity="SEV-1"} 1.0' in body
    assert incident.reference not in body and "Acquisition" not in body and "Payments" not in body


@pytest.mark.django_db
def test_replay_and_dead_letters_never_echo_the_webhook_secret(make_user, settings, receiver, client_as):
    settings.NOTIFY_MAX_ATTEMPTS = 1
    receiver.default_status = 404
    secret_url = receiver.url + SECRET_HOOK_PATH
    service = Service.objects.create(name="Chat", slug="chat", webhook_url=secret_url)
    (delivery,) = notifications.notify(event="e", title="t", text="x", service=service)
    send_delivery.delay(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.DEAD

    client = client_as(Role.SRE)
    page = client.get(reverse("notifications:dead_letters")).content.decode()
    replay = client.post(reverse("notifications:replay", args=[delivery.pk]), follow=True).content.decode()
    admin = client_as(Role.ADMIN, is_staff=True, is_superuser=True)
    admin_page = admin.get(reverse("admin:notifications_delivery_change", args=[delivery.pk])).content.decode()

    for shown in (page, replay, admin_page, delivery.last_error):
        assert "s3cr3t" not in shown
    assert "Replaying e to http://127.0.0.1" in replay
    assert not [e for e in AuditEntry.objects.all() if "s3cr3t" in f"{e.before}{e.after}{e.target_repr}"]


@pytest.mark.django_db
def test_transport_errors_quoting_the_url_are_redacted(make_user, settings, caplog):
    settings.NOTIFY_MAX_ATTEMPTS = 1
    settings.NOTIFY_WEBHOOK_URL = "http://127.0.0.1:1" + SECRET_HOOK_PATH  # nothing listens on port 1
    (delivery,) = notifications.notify(event="e", title="t", text="x")
    send_delivery.delay(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.DEAD and delivery.last_error
    assert "s3cr3t" not in delivery.last_error
    assert "s3cr3t" not in caplog.text


@pytest.mark.django_db
def test_service_admin_audit_keeps_the_webhook_secret_out(client_as):
    from tests.opsconsole.test_admin_audit import _FormFields

    admin = client_as(Role.ADMIN, is_staff=True, is_superuser=True)
    service = Service.objects.create(name="Chat", slug="chat")
    url = reverse("admin:opsconsole_service_change", args=[service.pk])
    form = _FormFields()
    form.feed(admin.get(url).content.decode())
    form.data["webhook_url"] = ["https://hooks.slack.com" + SECRET_HOOK_PATH]
    assert admin.post(url, {**form.data, "_save": "Save"}).status_code == 302
    entry = AuditEntry.objects.get(action="opsconsole.service.admin_change")
    assert "s3cr3t" not in str(entry.after) and entry.after["webhook_url"] == "https://hooks.slack.com/services/…"
