"""send_delivery on a real Celery worker (Redis broker, eager mode off)."""

import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import transaction

from notifications import services as notifications
from notifications.models import Delivery
from opsconsole.celery import app
from tests.notifications.webhook_server import WebhookReceiver
from tests.processes import wait_until

# Both tests start a worker on the "notifications" queue of the same Redis
# database: on two xdist workers at once, one would take the other's messages
# (and look the delivery up in its own test database). One group, one process.
pytestmark = pytest.mark.xdist_group("notifications-worker")


@pytest.fixture
def receiver():
    server = WebhookReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def real_worker(settings, redis_client):
    """A Celery worker thread consuming the notifications queue of this test's Redis DB."""
    app.conf.task_always_eager = False
    redis_client.delete("notifications")  # nothing left over from an earlier run
    with start_worker(
        app,
        perform_ping_check=False,
        queues=["notifications"],
        shutdown_timeout=30,
        loglevel="WARNING",
    ) as worker:
        yield worker


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_real_worker_retries_with_backoff_until_the_endpoint_recovers(settings, receiver, real_worker):
    settings.NOTIFY_WEBHOOK_URL = receiver.url
    settings.NOTIFY_MAX_ATTEMPTS = 5
    settings.NOTIFY_BACKOFF_SECONDS = 0.5
    receiver.statuses.extend([503, 503])  # down twice, then it recovers

    with transaction.atomic():
        (delivery,) = notifications.notify(event="incident.declared", title="INC-1", text="down")
        # Nothing is queued before the caller commits.
        assert delivery.status == "pending"

    wait_until(lambda: Delivery.objects.get(pk=delivery.pk).status == "sent", what="the delivery to be sent")
    delivery.refresh_from_db()
    assert delivery.attempts == 3
    assert [r["status"] for r in receiver.received] == [503, 503, 200]
    first_wait = receiver.received[1]["at"] - receiver.received[0]["at"]
    second_wait = receiver.received[2]["at"] - receiver.received[1]["at"]
    # Exponential backoff: 0.5 s, then 1 s.
    assert 0.45 <= first_wait < 5 and 0.95 <= second_wait < 5, (first_wait, second_wait)
    time.sleep(0.5)
    assert len(receiver.received) == 3  # and nothing more arrives afterwards


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_real_worker_sends_once_when_the_task_is_queued_twice(settings, receiver, real_worker):
    settings.NOTIFY_WEBHOOK_URL = receiver.url
    with transaction.atomic():
        (delivery,) = notifications.notify(event="incident.declared", title="INC-2", text="x")
    notifications.enqueue([delivery.pk, delivery.pk])  # two more messages for the same delivery

    wait_until(lambda: Delivery.objects.get(pk=delivery.pk).status == "sent", what="the delivery to be sent")
    time.sleep(1.0)  # let the duplicates run
    assert len(receiver.received) == 1
    assert Delivery.objects.get(pk=delivery.pk).attempts == 1
