"""Rows of the incident CSV exports; `opsconsole.csv_export` streams and neutralises them."""

from collections.abc import Iterable, Iterator

from opsconsole.csv_export import json_cell

from .models import Incident, TimelineEvent

INCIDENT_COLUMNS = [
    "reference",
    "title",
    "severity",
    "status",
    "commander",
    "services",
    "tags",
    "restricted",
    "declared_at",
    "acknowledged_at",
    "mitigated_at",
    "resolved_at",
    "closed_at",
    "breached",
    "customer_impact",
    "summary",
]

TIMELINE_COLUMNS = [
    "incident",
    "event_id",
    "occurred_at",
    "recorded_at",
    "kind",
    "author",
    "text",
    "corrects",
    "starred",
    "data",
]


def incident_rows(incidents) -> Iterator[list]:
    """One row per incident of the (already permission-filtered) queryset, in chunks."""
    for i in incidents.iterator(chunk_size=500):
        yield [
            i.reference,
            i.title,
            i.severity.name,
            i.status,
            i.commander,
            " ".join(s.slug for s in i.services.all()),
            " ".join(i.tags),
            i.restricted,
            i.declared_at,
            i.acknowledged_at,
            i.mitigated_at,
            i.resolved_at,
            i.closed_at,
            i.is_breached,
            i.customer_impact,
            i.summary,
        ]


def timeline_rows(incident: Incident, events: Iterable[TimelineEvent]) -> Iterator[list]:
    """One row per timeline event; `data` is JSON so another tool can parse it back."""
    for e in events:
        yield [
            incident.reference,
            e.pk,
            e.occurred_at,
            e.recorded_at,
            e.kind,
            e.author.get_username() if e.author else e.author_label,
            e.text,
            e.corrects_id,
            e.starred,
            json_cell(e.data),
        ]
