"""Outbound notifications against a real HTTP server and Django's locmem mail backend."""

import datetime
import socket

import pytest
from django.core import mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from notifications import services as notifications
from notifications.models import Delivery
from notifications.tasks import send_delivery
from oncall.models import Rotation, Shift
from opsconsole.models import AuditEntry, Service
from opsconsole.roles import Role
from tests.notifications.webhook_server import WebhookReceiver


@pytest.fixture(autouse=True)
def _eager_retries_run_in_line():
    """With task_eager_propagates, an eager self.retry() raises instead of
    running the retry; without it Celery runs each retry at once, in line
    (countdowns are skipped), which is what these tests want."""
    from opsconsole.celery import app

    app.conf.task_eager_propagates = False
    yield


@pytest.fixture
def receiver():
    server = WebhookReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def notify_settings(settings, receiver):
    settings.NOTIFY_WEBHOOK_URL = receiver.url
    settings.NOTIFY_MAX_ATTEMPTS = 3
    settings.NOTIFY_BACKOFF_SECONDS = 0
    settings.NOTIFY_TIMEOUT_SECONDS = 5
    settings.CONSOLE_BASE_URL = "https://console.example.com"
    return settings


def _notify(callbacks, **kwargs) -> list[Delivery]:
    """notify() as a caller does it: inside a transaction, sent after commit."""
    with callbacks(execute=True):
        with transaction.atomic():
            deliveries = notifications.notify(
                event=kwargs.pop("event", "incident.declared"),
                title=kwargs.pop("title", "INC-1 declared (SEV-2)"),
                text=kwargs.pop("text", "Checkout API is returning 502 <errors> & timeouts"),
                url=kwargs.pop("url", "/incidents/1/"),
                **kwargs,
            )
    return deliveries


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


@pytest.mark.django_db
def test_webhook_receives_slack_compatible_json(notify_settings, receiver, django_capture_on_commit_callbacks):
    (delivery,) = _notify(django_capture_on_commit_callbacks)

    assert len(receiver.received) == 1
    body = receiver.received[0]["json"]
    assert receiver.received[0]["content_type"] == "application/json"
    assert body["text"].startswith("INC-1 declared (SEV-2)")
    assert "https://console.example.com/incidents/1/" in body["text"]
    assert body["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "INC-1 declared (SEV-2)", "emoji": True},
    }
    # Slack mrkdwn control characters are escaped; the link is absolute.
    assert body["blocks"][1]["text"]["text"] == "Checkout API is returning 502 &lt;errors&gt; &amp; timeouts"
    assert "<https://console.example.com/incidents/1/|Open in Ops Console>" in body["blocks"][2]["elements"][0]["text"]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.channel) == ("sent", 1, "webhook")
    assert delivery.sent_at is not None and delivery.target == receiver.url


@pytest.mark.django_db
def test_service_webhook_is_used_before_the_global_one(notify_settings, receiver, django_capture_on_commit_callbacks):
    notify_settings.NOTIFY_WEBHOOK_URL = _closed_port_url()
    service = Service.objects.create(name="Checkout", slug="checkout", webhook_url=receiver.url)

    (delivery,) = _notify(django_capture_on_commit_callbacks, service=service)

    assert delivery.target == receiver.url
    assert len(receiver.successes) == 1
    assert Delivery.objects.get().service == service


@pytest.mark.django_db
def test_no_webhook_configured_means_no_webhook_delivery(settings, django_capture_on_commit_callbacks):
    settings.NOTIFY_WEBHOOK_URL = ""
    assert _notify(django_capture_on_commit_callbacks) == []
    assert _notify(django_capture_on_commit_callbacks, service=Service.objects.create(name="A", slug="a")) == []
    assert not Delivery.objects.exists()


@pytest.mark.django_db
def test_rolled_back_caller_sends_nothing(notify_settings, receiver, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            notifications.notify(event="incident.declared", title="t", text="x", emails=["a@example.com"])
            raise RuntimeError("the caller's action failed")
    assert not Delivery.objects.exists()
    assert receiver.received == [] and mail.outbox == []


@pytest.mark.django_db
def test_server_error_is_retried_then_dead_lettered(notify_settings, receiver, django_capture_on_commit_callbacks):
    receiver.default_status = 500

    (delivery,) = _notify(django_capture_on_commit_callbacks)

    assert [r["status"] for r in receiver.received] == [500, 500, 500]  # NOTIFY_MAX_ATTEMPTS = 3
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("dead", 3)
    assert "HTTP 500" in delivery.last_error and "gave up after 3 attempts" in delivery.last_error
    entry = AuditEntry.objects.get(action="notification.dead")
    assert entry.target_id == str(delivery.pk) and entry.after["attempts"] == 3


@pytest.mark.django_db
@pytest.mark.parametrize("transient", [500, 503, 429])
def test_transient_errors_retry_until_the_endpoint_recovers(
    notify_settings, receiver, django_capture_on_commit_callbacks, transient
):
    receiver.statuses.extend([transient, transient])

    (delivery,) = _notify(django_capture_on_commit_callbacks)

    assert [r["status"] for r in receiver.received] == [transient, transient, 200]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 3)
    assert not AuditEntry.objects.filter(action="notification.dead").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("permanent", [400, 404, 410])
def test_client_error_is_dead_at_once(notify_settings, receiver, django_capture_on_commit_callbacks, permanent):
    receiver.default_status = permanent

    (delivery,) = _notify(django_capture_on_commit_callbacks)

    assert len(receiver.received) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("dead", 1)
    assert delivery.last_error.startswith(f"HTTP {permanent}")


@pytest.mark.django_db
def test_unreachable_endpoint_is_transient(notify_settings, django_capture_on_commit_callbacks):
    notify_settings.NOTIFY_WEBHOOK_URL = _closed_port_url()

    (delivery,) = _notify(django_capture_on_commit_callbacks)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("dead", 3)
    assert "ConnectError" in delivery.last_error


@pytest.mark.django_db
def test_backoff_is_exponential_and_capped(settings):
    settings.NOTIFY_BACKOFF_SECONDS = 30
    assert [notifications.backoff_seconds(n) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert notifications.backoff_seconds(20) == notifications.MAX_BACKOFF_SECONDS


@pytest.mark.django_db
def test_failed_attempt_records_error_and_next_attempt(notify_settings, receiver, settings):
    settings.NOTIFY_BACKOFF_SECONDS = 30
    receiver.default_status = 502
    (delivery,) = notifications.notify(event="e", title="t", text="x")  # no commit hook: attempt by hand

    result = notifications.delivery_attempt(delivery.pk)

    assert result == notifications.AttemptResult("retry", 30)
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.attempts == 1 and "HTTP 502" in delivery.last_error
    wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
    assert 25 < wait <= 30
    assert delivery.locked_until is None


@pytest.mark.django_db
def test_a_delivery_is_never_sent_twice(notify_settings, receiver):
    (delivery,) = notifications.notify(event="e", title="t", text="x")

    send_delivery.delay(delivery.pk)
    send_delivery.delay(delivery.pk)  # a duplicate message, or a redelivery after a worker restart

    assert len(receiver.received) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 1)


@pytest.mark.django_db
def test_a_claimed_delivery_is_skipped_by_a_second_worker(notify_settings, receiver):
    (delivery,) = notifications.notify(event="e", title="t", text="x")
    # Another worker holds the lease (it is sending right now).
    Delivery.objects.filter(pk=delivery.pk).update(locked_until=timezone.now() + datetime.timedelta(minutes=1))

    assert notifications.delivery_attempt(delivery.pk).outcome == "skipped"
    assert receiver.received == []
    # Once the lease expires (that worker died), the delivery is sent.
    Delivery.objects.filter(pk=delivery.pk).update(locked_until=timezone.now() - datetime.timedelta(seconds=1))
    assert notifications.delivery_attempt(delivery.pk).outcome == "sent"
    assert len(receiver.received) == 1


@pytest.mark.django_db
def test_dead_delivery_is_not_sent_by_a_stale_task(notify_settings, receiver):
    receiver.default_status = 400
    (delivery,) = notifications.notify(event="e", title="t", text="x")
    send_delivery.delay(delivery.pk)
    receiver.default_status = 200

    send_delivery.delay(delivery.pk)

    assert len(receiver.received) == 1
    delivery.refresh_from_db()
    assert delivery.status == "dead"


@pytest.mark.django_db
def test_replay_after_the_server_recovers_delivers_once(
    notify_settings, receiver, client_as, django_capture_on_commit_callbacks
):
    receiver.default_status = 400
    (delivery,) = _notify(django_capture_on_commit_callbacks)
    delivery.refresh_from_db()
    assert delivery.status == "dead"
    receiver.default_status = 200
    client = client_as(Role.SRE)
    url = reverse("notifications:replay", args=[delivery.pk])

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url)
    with django_capture_on_commit_callbacks(execute=True):
        second = client.post(url, follow=True)  # a double click

    assert response.status_code == 302
    assert "not in the dead-letter list any more" in second.content.decode()
    assert len(receiver.successes) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 1)
    replay = AuditEntry.objects.get(action="notification.replay")
    assert replay.actor_id == client.user.pk
    assert replay.before["status"] == "dead" and replay.before["attempts"] == 1


@pytest.mark.django_db
def test_replay_through_htmx_swaps_the_row(notify_settings, receiver, client_as, django_capture_on_commit_callbacks):
    receiver.default_status = 404
    (delivery,) = _notify(django_capture_on_commit_callbacks)
    receiver.default_status = 200

    with django_capture_on_commit_callbacks(execute=True):
        response = client_as(Role.MANAGER).post(
            reverse("notifications:replay", args=[delivery.pk]), headers={"HX-Request": "true"}
        )

    assert response.status_code == 200
    html = response.content.decode()
    assert f'<tr id="delivery-{delivery.pk}">' in html and "queued for a fresh attempt" in html
    assert "<html" not in html
    delivery.refresh_from_db()
    assert delivery.status == "sent"


@pytest.mark.django_db
def test_replay_of_a_delivery_that_is_not_dead_is_refused(notify_settings, receiver, client_as):
    (delivery,) = notifications.notify(event="e", title="t", text="x")
    send_delivery.delay(delivery.pk)

    response = client_as(Role.SRE).post(reverse("notifications:replay", args=[delivery.pk]), follow=True)

    assert "not in the dead-letter list" in response.content.decode()
    assert not AuditEntry.objects.filter(action="notification.replay").exists()
    assert len(receiver.received) == 1


@pytest.mark.django_db
def test_viewer_cannot_replay(notify_settings, receiver, client_as):
    receiver.default_status = 400
    (delivery,) = notifications.notify(event="e", title="t", text="x")
    send_delivery.delay(delivery.pk)

    response = client_as(Role.VIEWER).post(reverse("notifications:replay", args=[delivery.pk]))

    assert response.status_code == 403
    delivery.refresh_from_db()
    assert delivery.status == "dead"


@pytest.mark.django_db
def test_emails_one_delivery_per_distinct_address(settings, django_capture_on_commit_callbacks):
    settings.NOTIFY_WEBHOOK_URL = ""
    settings.DEFAULT_FROM_EMAIL = "console@example.com"

    deliveries = _notify(
        django_capture_on_commit_callbacks,
        emails=["sre@example.com", "SRE@example.com", " ", "ic@example.com"],
    )

    assert sorted(d.target for d in deliveries) == ["ic@example.com", "sre@example.com"]
    assert sorted(m.to[0] for m in mail.outbox) == ["ic@example.com", "sre@example.com"]
    message = mail.outbox[0]
    assert message.subject == "[Ops Console] INC-1 declared (SEV-2)"
    assert message.from_email == "console@example.com"
    assert "http://127.0.0.1:8000/incidents/1/" in message.body or "/incidents/1/" in message.body
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}


@pytest.mark.django_db
def test_notify_on_call_emails_whoever_is_on_call_for_the_service(
    notify_settings, receiver, make_user, django_capture_on_commit_callbacks
):
    now = timezone.now()
    postgres = Service.objects.create(name="PostgreSQL", slug="postgresql")
    primary = Rotation.objects.create(name="Primary SRE")  # no services: covers all
    database = Rotation.objects.create(name="Database")
    database.services.add(postgres)
    sre = make_user(Role.SRE, email="sre@example.com")
    dba = make_user(Role.MANAGER, email="dba@example.com")
    off_shift = make_user(Role.SRE, email="later@example.com")
    Shift.objects.create(
        rotation=primary,
        user=sre,
        starts_at=now - datetime.timedelta(hours=1),
        ends_at=now + datetime.timedelta(hours=1),
    )
    Shift.objects.create(
        rotation=database,
        user=dba,
        starts_at=now - datetime.timedelta(hours=1),
        ends_at=now + datetime.timedelta(hours=1),
    )
    Shift.objects.create(
        rotation=primary,
        user=off_shift,
        starts_at=now + datetime.timedelta(hours=1),
        ends_at=now + datetime.timedelta(hours=2),
    )
    other = Service.objects.create(name="Redis", slug="redis")

    with django_capture_on_commit_callbacks(execute=True):
        notifications.notify_on_call(event="incident.unassigned", title="No commander", text="x", service=postgres)
    assert sorted(m.to[0] for m in mail.outbox) == ["dba@example.com", "sre@example.com"]

    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        notifications.notify_on_call(event="checklist.missed", title="Missed", text="x", service=other)
    assert [m.to[0] for m in mail.outbox] == ["sre@example.com"]
    assert len(receiver.successes) == 2  # the webhook went out both times


@pytest.mark.django_db
def test_dead_letter_page_lists_errors_with_constant_queries(
    notify_settings, receiver, client_as, django_assert_max_num_queries
):
    receiver.default_status = 400
    service = Service.objects.create(name="Checkout", slug="checkout")
    client = client_as(Role.SRE)

    def fill(count: int) -> None:
        for _ in range(count):
            (delivery,) = notifications.notify(event="incident.declared", title="t", text="x", service=service)
            send_delivery.delay(delivery.pk)

    fill(2)
    with django_assert_max_num_queries(7):
        small = client.get(reverse("notifications:dead_letters"))
    fill(60)
    with django_assert_max_num_queries(7):
        large = client.get(reverse("notifications:dead_letters"))
    with django_assert_max_num_queries(7):
        older = client.get(reverse("notifications:dead_letters"), {"page": 2})

    assert small.status_code == large.status_code == older.status_code == 200
    html = large.content.decode()
    assert html.count("Replay</button>") == 50 and "62 dead letters" in html
    assert "HTTP 400" in html and "Checkout" in html
    assert older.content.decode().count("Replay</button>") == 12


@pytest.mark.django_db
def test_dead_letter_page_hides_replay_from_viewers(notify_settings, receiver, client_as):
    receiver.default_status = 400
    (delivery,) = notifications.notify(event="e", title="t", text="x")
    send_delivery.delay(delivery.pk)

    html = client_as(Role.VIEWER).get(reverse("notifications:dead_letters")).content.decode()

    assert "HTTP 400" in html and "Replay</button>" not in html


@pytest.mark.django_db
def test_metrics_export_counts_and_dead_letters(notify_settings, receiver, client):
    receiver.default_status = 400
    for _ in range(2):
        (delivery,) = notifications.notify(event="e", title="t", text="x")
        send_delivery.delay(delivery.pk)

    text = client.get(reverse("metrics")).content.decode()

    assert "opsconsole_notification_dead_letters 2.0" in text
    assert 'opsconsole_notifications_total{channel="webhook",outcome="dead"}' in text


@pytest.mark.django_db
def test_sweeper_requeues_deliveries_whose_message_was_lost(notify_settings, receiver):
    # Created but never queued (the broker was down at commit time).
    (lost,) = notifications.notify(event="e", title="t", text="x")
    (recent,) = notifications.notify(event="e", title="t", text="x")
    (leased,) = notifications.notify(event="e", title="t", text="x")
    long_ago = timezone.now() - datetime.timedelta(minutes=10)
    Delivery.objects.filter(pk__in=[lost.pk, leased.pk]).update(next_attempt_at=long_ago)
    Delivery.objects.filter(pk=leased.pk).update(locked_until=timezone.now() + datetime.timedelta(minutes=1))

    from notifications.tasks import requeue_stale_deliveries

    requeue_stale_deliveries.delay()
    requeue_stale_deliveries.delay()  # a second beat tick sends nothing more

    assert len(receiver.received) == 1
    assert Delivery.objects.get(pk=lost.pk).status == "sent"
    assert Delivery.objects.get(pk=recent.pk).status == "pending"  # not overdue: its own task will run
    assert Delivery.objects.get(pk=leased.pk).status == "pending"  # a worker is sending it


@pytest.mark.django_db
def test_email_smtp_errors_are_classified(settings):
    import smtplib

    from notifications.services import PermanentError, TransientError, _send_email

    delivery = Delivery(channel="email", target="a@example.com", payload={"subject": "s", "body": "b"})
    settings.EMAIL_BACKEND = "tests.notifications.test_notifications.RefusingBackend"
    RefusingBackend.error = smtplib.SMTPRecipientsRefused({"a@example.com": (550, b"no such user")})
    with pytest.raises(PermanentError):
        _send_email(delivery)
    RefusingBackend.error = smtplib.SMTPResponseException(451, b"try again later")
    with pytest.raises(TransientError):
        _send_email(delivery)
    RefusingBackend.error = smtplib.SMTPServerDisconnected("gone")
    with pytest.raises(TransientError):
        _send_email(delivery)


class RefusingBackend:
    """An email backend that fails the way smtplib does (for classification only)."""

    error: Exception = OSError()

    def __init__(self, **kwargs) -> None:
        pass

    def send_messages(self, messages) -> int:
        raise self.error


@pytest.mark.django_db
def test_admin_lists_deliveries_and_links_the_dead_letter_page(notify_settings, receiver, admin_client):
    receiver.default_status = 400
    (delivery,) = notifications.notify(event="incident.declared", title="t", text="x")
    send_delivery.delay(delivery.pk)

    page = admin_client.get(reverse("admin:notifications_delivery_changelist"), {"status__exact": "dead"})

    html = page.content.decode()
    assert page.status_code == 200
    assert reverse("notifications:dead_letters") in html and "incident.declared" in html


@pytest.mark.django_db
def test_admin_replay_action_requeues_dead_letters(
    notify_settings, receiver, django_capture_on_commit_callbacks, make_user, client
):
    receiver.default_status = 400
    (delivery,) = _notify(django_capture_on_commit_callbacks)
    receiver.default_status = 200
    admin = make_user(Role.ADMIN, is_staff=True, is_superuser=True)
    client.force_login(admin)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:notifications_delivery_changelist"),
            {"action": "replay_dead_letters", "_selected_action": [delivery.pk]},
            follow=True,
        )

    assert "1 dead letter(s) queued" in response.content.decode()
    delivery.refresh_from_db()
    assert delivery.status == "sent"
    assert AuditEntry.objects.filter(action="notification.replay", actor_id=admin.pk).exists()


def test_webhook_urls_are_masked_where_people_read_them():
    slack = Delivery(channel="webhook", target="https://hooks.slack.com/services/T00/B00/secret-token")
    email = Delivery(channel="email", target="sre@example.com")
    assert slack.target_display == "https://hooks.slack.com/services/…"
    assert "secret-token" not in str(slack)
    assert email.target_display == "sre@example.com"
    assert Delivery(channel="webhook", target="http://127.0.0.1:9/hook").target_display == "http://127.0.0.1:9/hook"
    assert Delivery(channel="webhook", target="http://h/hook?token=x").target_display == "http://h/hook/…"


@pytest.mark.django_db
def test_dead_letter_page_and_audit_do_not_show_the_webhook_secret(notify_settings, receiver, client_as):
    receiver.default_status = 400
    notify_settings.NOTIFY_WEBHOOK_URL = receiver.url + "/T00/B00/secret-token"
    (delivery,) = notifications.notify(event="e", title="t", text="x")
    send_delivery.delay(delivery.pk)

    html = client_as(Role.VIEWER).get(reverse("notifications:dead_letters")).content.decode()

    assert "HTTP 400" in html and "secret-token" not in html
    assert "secret-token" not in str(AuditEntry.objects.get(action="notification.dead").after)
