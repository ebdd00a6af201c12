"""Alerts and check state changes open or update the incident of their dedup key.

open_or_update_from_source() is a public contract (healthchecks and the
Alertmanager receiver call it; keep the name)."""

from collections.abc import Iterable

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from opsconsole import audit

from ..models import EventKind, Incident, IncidentSignal, TimelineEvent
from .lifecycle import incident_declare
from .timeline import timeline_add_event


def _update_signals(incident: Incident, signals: list[dict]) -> None:
    """Upsert the latest state of each alert/check in one statement."""
    now = timezone.now()
    latest = {str(sig["key"])[:300]: sig for sig in signals}  # one row per key, last state wins
    if connection.vendor == "postgresql":
        # One array per column, no model instances: for a 20-alert delivery
        # bulk_create's own work cost more than the statement.
        table = IncidentSignal._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (incident_id, key, label, firing, updated_at) "  # nosec B608  # _meta table
                "SELECT %s, s.key, s.label, s.firing, %s "
                "FROM unnest(%s::text[], %s::text[], %s::boolean[]) AS s(key, label, firing) "
                "ON CONFLICT (incident_id, key) DO UPDATE SET firing = EXCLUDED.firing, "
                "label = EXCLUDED.label, updated_at = EXCLUDED.updated_at",
                [
                    incident.pk,
                    now,
                    list(latest),
                    [str(sig.get("label", ""))[:300] for sig in latest.values()],
                    [bool(sig["firing"]) for sig in latest.values()],
                ],
            )
        return
    IncidentSignal.objects.bulk_create(
        [
            IncidentSignal(
                incident=incident,
                key=key,
                firing=bool(sig["firing"]),
                label=str(sig.get("label", ""))[:300],
                updated_at=now,
            )
            for key, sig in latest.items()
        ],
        update_conflicts=True,
        unique_fields=["incident", "key"],
        update_fields=["firing", "label", "updated_at"],
    )


def open_or_update_from_source(
    *,
    dedup_key: str,
    title: str,
    severity: int,
    services: Iterable = (),
    text: str,
    resolved: bool = False,
    data: dict | None = None,
    source_kind: str = "alert",
    reference: str = "",
    text_html: str = "",
) -> Incident | None:
    """Alerts and checks open incidents by themselves.

    - the first firing call for a dedup key opens an incident (SEV `severity`);
    - later calls while that incident is open add an event to it;
    - `resolved=True` adds a "resolved" event to the open incident (or to the
      latest one for that key); it does not resolve the incident — people do;
    - returns None when there is nothing to attach a resolved signal to.
    `data["signals"]` (optional) lists {key, label, firing} per alert so that
    resolving asks for confirmation while any still fires.
    Idempotent for repeats: a call whose text and data equal the incident's latest
    event from that source adds nothing (a retried task); a flap
    (firing → resolved → firing) still records every change.
    Safe under concurrency: the partial unique constraint allows one open
    incident per dedup key; a loser of that race adds its event to the winner.
    `reference`: the id for the incident if this call opens one, taken
    beforehand with next_reference() (unused otherwise: a gap in the day's
    numbers).
    `text_html`: the HTML of `text`, starting with its first paragraph, when
    the caller composed both (see timeline_add_event's `html`).
    """
    if not dedup_key:
        raise ValueError("dedup_key is required")
    data = dict(data or {})
    signals = data.pop("signals", None) or [{"key": dedup_key, "label": title, "firing": not resolved}]
    kind = EventKind.CHECK if source_kind == "check" else EventKind.ALERT
    label = f"{source_kind}"
    created = False
    # No savepoint of its own: inside a caller's transaction (an Alertmanager
    # delivery) a failure fails that transaction; two round trips fewer.
    with transaction.atomic(savepoint=False):
        incident = Incident.objects.select_for_update().open().filter(dedup_key=dedup_key).first()
        if incident is None and resolved:
            incident = Incident.objects.filter(dedup_key=dedup_key).order_by("-declared_at").first()
            if incident is None:
                return None
        elif incident is None:
            try:
                with transaction.atomic():
                    incident = incident_declare(
                        actor=None,
                        title=title,
                        severity=severity,
                        services=services,
                        dedup_key=dedup_key,
                        source_kind=source_kind,
                        author_label=label,
                        on_call_responders=True,
                        reference=reference,
                    )
                created = True
            except IntegrityError:
                incident = Incident.objects.select_for_update().open().get(dedup_key=dedup_key)
        prefix = "Resolved" if resolved else "Firing"
        event_text = f"**{prefix}:** {text}" if text else f"**{prefix}:** {title}"
        # The prefix joins the text's first paragraph, as in the Markdown.
        event_html = f"<p><strong>{prefix}:</strong> {text_html[3:]}" if text_html.startswith("<p>") else None
        if not resolved and int(severity) < incident.severity_id:
            higher = f"The source reports SEV-{int(severity)}, higher than the incident's SEV-{incident.severity_id}."
            event_text += f"\n\n{higher}"
            if event_html is not None:
                event_html += f"\n<p>{higher}</p>"
        event_data = audit._normalise({**data, "dedup_key": dedup_key, "resolved": resolved, "severity": int(severity)})
        # A new incident has no event from the source yet: nothing to compare.
        last = None if created else TimelineEvent.objects.filter(incident=incident, kind=kind).order_by("-id").first()
        if last is not None and last.data == event_data and last.text == event_text:
            # The same signal delivered again (a retried task, a re-sent
            # notification): the timeline already says so.
            return incident
        # A new incident's last_activity_at is its declare, a moment ago: no UPDATE.
        timeline_add_event(
            incident=incident,
            kind=kind,
            text=event_text,
            html=event_html,
            author_label=label,
            data=event_data,
            activity=not created,
        )
        _update_signals(incident, signals)
        audit.record(
            None,
            f"incident.{source_kind}_{'resolved' if resolved else 'firing'}",
            incident,
            after={"dedup_key": dedup_key},
        )
    return incident
