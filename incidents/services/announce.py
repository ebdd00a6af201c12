"""Telling people about an incident: webhook and email through the notifications app."""

from django.urls import reverse

from notifications import services as notifications

from ..models import Incident


def _participant_emails(incident: Incident) -> list[str]:
    people = [incident.commander, incident.comms_lead, *incident.responders.all()]
    return sorted({p.email for p in people if p is not None and p.email})


def _announce(event: str, incident: Incident, title: str, text: str, *, on_call: bool = False) -> None:
    """Slack-compatible webhook (the service's or the global one) and email,
    queued by the notifications app in the caller's transaction and sent by
    Celery after commit with retries; dead letters are listed in the UI.
    `on_call`: email whoever is on call for the first service (declares)."""
    service = incident.services.first()
    url = reverse("incidents:detail", args=[incident.reference])
    if on_call:
        notifications.notify_on_call(event=event, title=title, text=text, url=url, service=service)
    else:
        notifications.notify(
            event=event,
            title=title,
            text=text,
            url=url,
            service=service,
            emails=_participant_emails(incident),
        )
