"""Telling people about an incident: webhook and email through the notifications app.

Restricted incidents are announced only to their participants, by e-mail,
naming only the reference: no chat webhook (service or global), nobody
merely on call, no title or summary in the message or in Delivery.payload.
"""

from django.urls import reverse

from notifications import services as notifications

from ..models import Incident

_RESTRICTED_TEXT = "A restricted incident: its participants see the details in Ops Console."


def _participant_emails(incident: Incident) -> list[str]:
    people = [incident.commander, incident.comms_lead, *incident.responders.all()]
    return sorted({p.email for p in people if p is not None and p.email})


def notify_about_incident(
    event: str,
    incident: Incident,
    title: str,
    text: str,
    *,
    on_call: bool = False,
    emails: list[str] | None = None,
    webhook: bool = True,
    exclude: frozenset[str] = frozenset(),
    on_call_people: list | None = None,
) -> None:
    """Every incident notification goes through here (announcements, nudges).

    `emails` None: the participants. `on_call`: also whoever is on call for the
    first service (declares, unassigned nudges). Restricted: participants only
    (of `emails`, those who are participants), reference only. `exclude`:
    addresses that already got a more specific notice (the people the
    escalation policy just paged as level 1), so nobody is told twice.
    `on_call_people`: who is on call, when the caller has just asked."""
    service = incident.services.first()
    url = reverse("incidents:detail", args=[incident.reference])
    if incident.restricted:
        participants = _participant_emails(incident)
        to = [e for e in (participants if emails is None else emails) if e in participants and e not in exclude]
        notifications.notify(
            event=event,
            title=f"{incident.reference}: {event.removeprefix('incident.').replace('_', ' ')}",
            text=_RESTRICTED_TEXT,
            url=url,
            service=service,
            emails=to,
            webhook=False,
            subject=incident,
            restricted=True,
        )
    elif on_call and emails is None:
        notifications.notify_on_call(
            event=event,
            title=title,
            text=text,
            url=url,
            service=service,
            subject=incident,
            exclude=exclude,
            people=on_call_people,
        )
    else:
        notifications.notify(
            event=event,
            title=title,
            text=text,
            url=url,
            service=service,
            emails=[e for e in (_participant_emails(incident) if emails is None else emails) if e not in exclude],
            webhook=webhook,
            subject=incident,
        )


def _announce(
    event: str,
    incident: Incident,
    title: str,
    text: str,
    *,
    on_call: bool = False,
    exclude=frozenset(),
    on_call_people: list | None = None,
) -> None:
    """Slack-compatible webhook (the service's or the global one) and email,
    queued by the notifications app in the caller's transaction and sent by
    Celery after commit with retries; dead letters are listed in the UI.
    `on_call`: email whoever is on call for the first service (declares)."""
    notify_about_incident(
        event, incident, title, text, on_call=on_call, exclude=frozenset(exclude), on_call_people=on_call_people
    )
