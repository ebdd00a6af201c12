"""Writes of the notifications app (outbound notifications): Slack-compatible webhooks and email, with retries
and a dead-letter list.

Callers (incidents, checklists, ...) call `notify` or `notify_on_call` inside
their own transaction. Each target becomes one `Delivery` row, written in
that transaction, and the Celery task `notifications.tasks.send_delivery` sends
it only after the commit: a rolled-back action notifies nobody.

Sending (`delivery_attempt`) is safe to run twice and from two workers at
once: a worker first claims the delivery with a conditional UPDATE (a lease in
`locked_until`), and a sent or dead delivery is never claimed again.
"""

import logging
import smtplib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.db import models, transaction
from django.db.models import F, Q
from django.utils import timezone
from prometheus_client import Counter

from opsconsole import audit
from opsconsole.bulk import insert_many
from opsconsole.models import Service
from opsconsole.redaction import redact
from opsconsole.roles import check_capability

from . import recipients
from .models import Delivery

if TYPE_CHECKING:
    from opsconsole.models import User

logger = logging.getLogger(__name__)

NOTIFICATIONS = Counter(
    "opsconsole_notifications",
    "Delivery attempts of outbound notifications, by channel and outcome (sent, retry, dead).",
    ["channel", "outcome"],
)

# Longest wait between two attempts, whatever NOTIFY_BACKOFF_SECONDS says.
MAX_BACKOFF_SECONDS = 3600.0


class TransientError(Exception):
    """Worth trying again later: connection error, timeout, HTTP 5xx or 429."""


class PermanentError(Exception):
    """Trying again cannot help: HTTP 4xx (other than 429), an invalid URL, a refused address."""


# --- Creating deliveries ----------------------------------------------------


def absolute_url(url: str) -> str:
    """A link that works outside the console: relative paths get CONSOLE_BASE_URL in front."""
    if url.startswith(("http://", "https://")):
        return url
    return f"{settings.CONSOLE_BASE_URL}/{url.lstrip('/')}"


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn treats these three as control characters.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webhook_payload(*, event: str, title: str, text: str, link: str) -> dict:
    """Slack-compatible JSON: `text` is the fallback (and all that Mattermost or
    Teams-style receivers read), `blocks` the rich message."""
    return {
        "text": f"{title}\n{text}\n{link}".strip(),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150], "emoji": True}},
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _slack_escape(text)[:3000] or " "},
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"<{link}|Open in Ops Console> · `{_slack_escape(event)}`",
                    }
                ],
            },
        ],
    }


def email_payload(*, title: str, text: str, link: str) -> dict:
    return {"subject": f"[Ops Console] {title}"[:200], "body": f"{text}\n\n{link}\n"}


def webhook_target(service: Service | None) -> str:
    """The service's own webhook, else the global one, else "" (no webhook)."""
    return (service.webhook_url if service is not None else "") or settings.NOTIFY_WEBHOOK_URL


def _deliveries_for(
    *,
    event: str,
    title: str,
    text: str,
    url: str = "",
    service: Service | None = None,
    emails: Iterable[str] = (),
    webhook: bool = True,
    subject: models.Model | None = None,
    restricted: bool = False,
    now=None,
) -> list[Delivery]:
    link = absolute_url(url)
    deliveries: list[Delivery] = []
    common = {
        "event": event,
        "service": service,
        "next_attempt_at": now or timezone.now(),
        "subject_type": subject._meta.label_lower if subject is not None else "",
        "subject_id": str(subject.pk) if subject is not None else "",
        "restricted": restricted,
    }
    target = webhook_target(service) if webhook else ""
    if target:
        payload = webhook_payload(event=event, title=title, text=text, link=link)
        deliveries.append(Delivery(channel=Delivery.Channel.WEBHOOK, target=target, payload=payload, **common))
    seen: set[str] = set()
    for raw in emails:
        address = (raw or "").strip()
        if not address or address.lower() in seen:
            continue
        seen.add(address.lower())
        payload = email_payload(title=title, text=text, link=link)
        deliveries.append(Delivery(channel=Delivery.Channel.EMAIL, target=address, payload=payload, **common))
    return deliveries


def notify(
    *,
    event: str,
    title: str,
    text: str,
    url: str = "",
    service: Service | None = None,
    emails: Iterable[str] = (),
    webhook: bool = True,
    subject: models.Model | None = None,
    restricted: bool = False,
) -> list[Delivery]:
    """Create deliveries in the caller's transaction and send them from Celery after commit.

    Webhook: the service's webhook URL or else NOTIFY_WEBHOOK_URL (none if both
    are blank). Email: one delivery per distinct address. Not audited on its
    own: creating deliveries is part of the caller's (audited) action.
    Guarantee: if the caller's transaction rolls back, nothing is sent.
    """
    return notify_many(
        [
            {
                "event": event,
                "title": title,
                "text": text,
                "url": url,
                "service": service,
                "emails": emails,
                "webhook": webhook,
                "subject": subject,
                "restricted": restricted,
            }
        ]
    )


def notify_many(notices: Iterable[dict]) -> list[Delivery]:
    """`notify` for many notices (each a dict of notify's arguments) in one
    INSERT and one after-commit enqueue: sweeps that page hundreds of people
    at once keep a constant number of statements."""
    now = timezone.now()
    deliveries = [d for notice in notices for d in _deliveries_for(now=now, **notice)]
    if not deliveries:
        return []
    with transaction.atomic():
        created = insert_many(deliveries)
        ids = [delivery.pk for delivery in created]
        transaction.on_commit(lambda: enqueue(ids))
    return created


def notify_on_call(
    *,
    event: str,
    title: str,
    text: str,
    url: str = "",
    service: Service | None = None,
    subject: models.Model | None = None,
    exclude: Iterable[str] = (),
    people: Iterable | None = None,
) -> list[Delivery]:
    """Email whoever is on call now for `service` (every rotation when None), plus the webhook;
    `exclude`: addresses already told (paged by the escalation policy); `people`:
    who is on call for `service`, when the caller has just asked (None: ask).

    "Who is on call" is answered by the resolver the oncall app registers
    (notifications.recipients): this app sits below oncall and never imports it."""
    skip = {e.lower() for e in exclude}
    people = recipients.on_call_now(service) if people is None else people
    emails = [user.email for user in people if user.email and user.email.lower() not in skip]
    return notify(event=event, title=title, text=text, url=url, service=service, emails=emails, subject=subject)


# Above this many deliveries at once (a sweep paging hundreds of people), the
# caller publishes one fan-out message and a notifications worker publishes the
# sends: the caller's time stays flat instead of one broker round trip each.
FAN_OUT_AT = 20


def enqueue(delivery_ids: Iterable[int]) -> None:
    """Queue one send task per delivery (through one fan-out task for many). A
    broker outage is logged, not raised: the deliveries stay pending and the
    sweeper (requeue_stale_deliveries) queues them again."""
    from .tasks import fan_out_deliveries

    ids = list(delivery_ids)
    if len(ids) > FAN_OUT_AT:
        try:
            fan_out_deliveries.delay(ids)
            return
        except Exception:  # noqa: BLE001 - the broker's errors are many and all mean "later"
            logger.exception("could not queue a fan-out of %s deliveries; the sweeper will retry them", len(ids))
            return
    enqueue_each(ids)


def enqueue_each(delivery_ids: Iterable[int]) -> None:
    """One send task per delivery (the fan-out task's work)."""
    from .tasks import send_delivery

    for delivery_id in delivery_ids:
        try:
            send_delivery.delay(delivery_id)
        except Exception:  # noqa: BLE001 - the broker's errors are many and all mean "later"
            logger.exception("could not queue delivery %s; the sweeper will retry it", delivery_id)


# --- Sending ----------------------------------------------------------------


def _send_webhook(delivery: Delivery) -> None:
    try:
        response = httpx.post(
            delivery.target,
            json=delivery.payload,
            timeout=settings.NOTIFY_TIMEOUT_SECONDS,
            headers={"User-Agent": f"OpsConsole/{settings.VERSION}"},
        )
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise PermanentError(f"invalid webhook URL: {exc}") from exc
    except httpx.TransportError as exc:  # connect errors, timeouts, dropped connections
        raise TransientError(f"{type(exc).__name__}: {exc or 'no detail'}") from exc
    if response.is_success:
        return
    message = f"HTTP {response.status_code}: {response.text[:500]}"
    if response.status_code == 429 or response.status_code >= 500:
        raise TransientError(message)
    raise PermanentError(message)


def _send_email(delivery: Delivery) -> None:
    payload = delivery.payload
    try:
        send_mail(
            payload.get("subject", ""),
            payload.get("body", ""),
            settings.DEFAULT_FROM_EMAIL,
            [delivery.target],
            fail_silently=False,
        )
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as exc:
        raise PermanentError(f"{type(exc).__name__}: {exc}") from exc
    except smtplib.SMTPResponseException as exc:
        # 5xx replies are permanent by SMTP's own definition; 4xx are "try later".
        error = PermanentError if exc.smtp_code >= 500 else TransientError
        raise error(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise TransientError(f"{type(exc).__name__}: {exc}") from exc


_SENDERS = {Delivery.Channel.WEBHOOK: _send_webhook, Delivery.Channel.EMAIL: _send_email}


def backoff_seconds(attempts: int) -> float:
    """Wait before the next attempt after `attempts` failed ones: base, 2×base, 4×base… capped."""
    return min(settings.NOTIFY_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS)


def _lease() -> timedelta:
    # Longer than one send can take (the HTTP timeout is per phase, so allow
    # a few) but short enough that a crashed worker's delivery is picked up again.
    return timedelta(seconds=settings.NOTIFY_TIMEOUT_SECONDS * 4 + 30)


@dataclass(frozen=True)
class AttemptResult:
    outcome: str  # "sent", "retry", "dead" or "skipped" (not ours to send)
    countdown: float | None = None


def delivery_attempt(delivery_id: int) -> AttemptResult:
    """Send one delivery once, if it still needs sending, and record the outcome.

    Idempotent and race-safe: the claim is a conditional UPDATE, so of two
    workers running this at once only one sends; a sent or dead delivery is
    skipped. A transient failure leaves it `failed` with a backoff to wait
    (the caller schedules the retry); a permanent failure, or the
    NOTIFY_MAX_ATTEMPTS-th transient one, makes it `dead` (audited).
    """
    now = timezone.now()
    lease_until = now + _lease()
    claimed = (
        Delivery.objects.filter(pk=delivery_id, status__in=[Delivery.Status.PENDING, Delivery.Status.FAILED])
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .update(locked_until=lease_until, attempts=F("attempts") + 1)
    )
    if not claimed:
        return AttemptResult("skipped")
    delivery = Delivery.objects.get(pk=delivery_id)
    try:
        _SENDERS[delivery.channel](delivery)
    except PermanentError as exc:
        return _dead(delivery, lease_until, redact(str(exc), delivery.target))
    except Exception as exc:  # noqa: BLE001 - TransientError, or a bug: both retried, bounded
        # HTTP clients quote the URL they called, and a webhook URL is a
        # credential: the error is redacted before it is stored or logged
        # (no traceback, which would quote it again).
        error = redact(str(exc) or type(exc).__name__, delivery.target)
        if not isinstance(exc, TransientError):
            logger.error("unexpected error sending delivery %s: %s: %s", delivery_id, type(exc).__name__, error)
        if delivery.attempts >= settings.NOTIFY_MAX_ATTEMPTS:
            return _dead(delivery, lease_until, f"{error} (gave up after {delivery.attempts} attempts)")
        countdown = backoff_seconds(delivery.attempts)
        Delivery.objects.filter(pk=delivery.pk, locked_until=lease_until).update(
            status=Delivery.Status.FAILED,
            last_error=error[:2000],
            next_attempt_at=timezone.now() + timedelta(seconds=countdown),
            locked_until=None,
        )
        NOTIFICATIONS.labels(channel=delivery.channel, outcome="retry").inc()
        return AttemptResult("retry", countdown)
    Delivery.objects.filter(pk=delivery.pk, locked_until=lease_until).update(
        status=Delivery.Status.SENT, sent_at=timezone.now(), next_attempt_at=None, locked_until=None
    )
    NOTIFICATIONS.labels(channel=delivery.channel, outcome="sent").inc()
    return AttemptResult("sent")


@transaction.atomic
def _dead(delivery: Delivery, lease_until, error: str) -> AttemptResult:
    updated = Delivery.objects.filter(pk=delivery.pk, locked_until=lease_until).update(
        status=Delivery.Status.DEAD,
        last_error=error[:2000],
        next_attempt_at=None,
        locked_until=None,
    )
    if updated:
        delivery.refresh_from_db()
        audit.record(
            None,
            "notification.dead",
            delivery,
            after={
                "attempts": delivery.attempts,
                "error": delivery.last_error,
                "target": delivery.target_display,
            },
        )
        NOTIFICATIONS.labels(channel=delivery.channel, outcome="dead").inc()
    return AttemptResult("dead")


# Deliveries due this long ago whose task never ran (broker down when they were
# queued, a lost message) are queued again by the sweeper.
STALE_AFTER = timedelta(minutes=5)


def requeue_stale_deliveries(*, limit: int = 500) -> int:
    """Queue again pending/failed deliveries that are overdue by STALE_AFTER and
    not leased by a worker; returns how many. Safe to run twice and beside the
    normal retries: sending claims the delivery (delivery_attempt), so a
    duplicate message never sends twice."""
    now = timezone.now()
    stale = (
        Delivery.objects.filter(
            status__in=[Delivery.Status.PENDING, Delivery.Status.FAILED],
            next_attempt_at__lt=now - STALE_AFTER,
        )
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    ids = list(stale)
    # Moving next_attempt_at keeps the next sweep from queueing them again
    # while these messages wait in the queue.
    Delivery.objects.filter(pk__in=ids).update(next_attempt_at=now)
    enqueue(ids)
    return len(ids)


# --- Dead letters -----------------------------------------------------------


class ReplayRefused(Exception):
    """The delivery is not a dead letter (any more): someone replayed it already."""


@transaction.atomic
def delivery_replay(*, actor: "User", delivery: Delivery) -> Delivery:
    """Give a dead delivery a fresh set of attempts and queue it after commit.

    Race-safe: the conditional UPDATE lets only one of two people pressing
    Replay at once win; the other gets ReplayRefused (nothing queued twice).
    """
    check_capability(actor, "config.edit")
    before = audit.snapshot(delivery, ("status", "attempts", "last_error"))
    updated = Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.DEAD).update(
        status=Delivery.Status.PENDING,
        attempts=0,
        next_attempt_at=timezone.now(),
        locked_until=None,
    )
    if not updated:
        raise ReplayRefused("This delivery is not in the dead-letter list any more (already replayed?).")
    delivery.refresh_from_db()
    audit.record(actor, "notification.replay", delivery, before=before, after={"status": delivery.status})
    transaction.on_commit(lambda: enqueue([delivery.pk]))
    return delivery
