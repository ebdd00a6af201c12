"""Redis stopped under a real gunicorn: pages and checklist ticks keep
working (PostgreSQL holds the tick), /readyz names Redis, and a notification
created while the broker was down is delivered once Redis is back (the
notifications sweeper queues it again) by a real Celery worker."""

import datetime
import re
import time

import httpx
import pytest
from django.conf import settings
from django.utils import timezone

from bench.servers import gunicorn
from checklists.models import ChecklistTemplate, RunItem, TemplateItem
from checklists.services import run_start
from incidents.models import Incident, SeverityLevel
from notifications.models import Delivery
from notifications.services import STALE_AFTER
from opsconsole.roles import Role
from tests.notifications.webhook_server import WebhookReceiver
from tests.opsconsole.faults import private_redis, session_for, signed_in_client
from tests.processes import production_env, start_celery_worker, wait_until

pytestmark = [pytest.mark.slow]


@pytest.mark.django_db(transaction=True)
def test_redis_down_pages_and_ticks_work_and_queued_work_is_delivered_later(make_user, tmp_path):
    user = make_user(Role.SRE, email="sre@example.com")
    template = ChecklistTemplate.objects.create(name="Fault drill")
    TemplateItem.objects.bulk_create(TemplateItem(template=template, order=i, text=f"Step {i}") for i in range(3))
    run = run_start(actor=user, template=template)
    first, second = run.items.order_by("order")[:2]
    receiver = WebhookReceiver().start()
    worker = None
    with private_redis() as redis_server:
        env = production_env(
            SECRET_KEY=settings.SECRET_KEY,  # the session below carries an auth hash keyed by it
            ALLOWED_HOSTS="127.0.0.1",
            WEB_CONCURRENCY="1",
            REDIS_URL=redis_server.url,
            CELERY_BROKER_URL=redis_server.url,
            NOTIFY_WEBHOOK_URL=receiver.url,
        )
        try:
            with gunicorn(env, tmp_path / "gunicorn.log") as base:
                client = signed_in_client(base, session_for(user), f"/checklists/runs/{run.pk}/")
                assert client.get("/readyz").status_code == 200
                htmx = {"HX-Request": "true"}
                assert client.post(f"/checklists/runs/{run.pk}/items/{first.pk}/tick/", headers=htmx).status_code == 200

                redis_server.stop()
                started = time.monotonic()
                for page in ("/", f"/checklists/runs/{run.pk}/", "/incidents/"):
                    response = client.get(page)
                    assert response.status_code == 200, (page, response.status_code, response.text[:300])
                # A live poll cannot compare stamps: it gets the full page, not a 304 or a 500.
                poll = client.get(f"/checklists/runs/{run.pk}/", headers={"HX-Trigger": "live-poll"})
                assert poll.status_code == 200
                tick = client.post(f"/checklists/runs/{run.pk}/items/{second.pk}/tick/", headers=htmx)
                assert tick.status_code == 200 and 'data-state="ticked"' in tick.text
                assert RunItem.objects.get(pk=second.pk).state == RunItem.State.TICKED
                assert RunItem.objects.get(pk=second.pk).ticked_by_id == user.pk

                # Signing in still works: the sign-in throttles fail open without their counters.
                with httpx.Client(base_url=base, timeout=30) as browser:
                    form = browser.get("/accounts/login/")
                    assert form.status_code == 200
                    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
                    browser.cookies = httpx.Cookies({"csrftoken": form.cookies["csrftoken"]})
                    signed_in = browser.post(
                        "/accounts/login/",
                        data={"login": user.username, "password": "pw-for-tests-1", "csrfmiddlewaretoken": token},
                    )
                    assert signed_in.status_code == 302, (signed_in.status_code, signed_in.text[:300])
                    assert "sessionid" in signed_in.cookies

                ready = client.get("/readyz")
                assert ready.status_code == 503 and "redis" in ready.text and "database" not in ready.text

                # Work queued while the broker is down: the declaration succeeds,
                # its notification stays pending in PostgreSQL.
                severity = SeverityLevel.objects.get(level=2)
                declared = client.post("/incidents/declare/", data={"title": "Broker drill", "severity": severity.pk})
                assert declared.status_code == 302, (declared.status_code, declared.text[:300])
                assert Incident.objects.filter(title="Broker drill").exists()
                pending = Delivery.objects.filter(target=receiver.url)
                assert pending.count() == 1 and pending.get().status == Delivery.Status.PENDING
                outage_seconds = time.monotonic() - started
                assert outage_seconds < 20, f"requests waited on the dead Redis: {outage_seconds:.1f} s"

                redis_server.start()  # same port, empty: the message never reached it
                wait_until(lambda: client.get("/readyz").status_code == 200, 15, "/readyz to recover")
                assert receiver.successes == []
                worker = start_celery_worker("notifications", env=env)
                # The sweeper's rule: queue again what is STALE_AFTER overdue. Age the
                # row past it instead of waiting, then run the beat task as beat does.
                pending.update(next_attempt_at=timezone.now() - STALE_AFTER - datetime.timedelta(seconds=5))
                from celery import Celery

                # Not the current app: later tests in this process must keep the console's broker.
                beat = Celery(broker=redis_server.url, set_as_current=False)
                beat.send_task("notifications.tasks.requeue_stale_deliveries", queue="notifications")
                wait_until(lambda: receiver.successes, 30, "the delivery queued during the outage to arrive")
                delivery = pending.get()
                assert delivery.status == Delivery.Status.SENT and delivery.attempts == 1
                assert receiver.successes[0]["json"]["text"] or receiver.successes[0]["json"]
                beat.close()
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(timeout=30)
            receiver.stop()
    log = (tmp_path / "gunicorn.log").read_text()
    assert '"status": 500' not in log, log[-3000:]
