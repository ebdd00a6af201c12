"""Reads for incidents: querysets with what the pages need joined in, so
that every page runs a constant number of queries whatever the data size."""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    Value,
    When,
)
from django.http import Http404, HttpRequest
from django.utils import timezone

from opsconsole.badinput import as_pk
from opsconsole.roles import Role, has_capability

from .models import OPEN_STATUSES, EventStar, Incident, IncidentSignal, SeverityLevel, TimelineEvent

TIMELINE_PAGE_SIZE = 50
SINCE_LIMIT = 200


def visible_incidents(user) -> "Incident.objects":
    """Restricted incidents are visible to their participants, Managers and Admins only."""
    qs = Incident.objects.all()
    if has_capability(user, "incident.view_restricted"):
        return qs
    if not getattr(user, "is_authenticated", False):
        return qs.filter(restricted=False)
    responding = Incident.responders.through.objects.filter(incident_id=OuterRef("pk"), user_id=user.pk)
    return qs.filter(
        Q(restricted=False) | Q(commander=user) | Q(comms_lead=user) | Q(created_by=user) | Exists(responding)
    )


def visible_incident_ids(user, ids: list[str]) -> list[str]:
    """Of these incident ids, those `user` may see (one query)."""
    numeric = [pk for pk in map(as_pk, ids) if pk is not None]
    return [str(pk) for pk in visible_incidents(user).filter(pk__in=numeric).values_list("pk", flat=True)]


def _breach_annotations(qs):
    now = timezone.now()
    ack = Q(acknowledged_at__isnull=True, ack_due_at__lt=now) | Q(acknowledged_at__gt=F("ack_due_at"))
    resolve = Q(resolved_at__isnull=True, resolve_due_at__lt=now) | Q(resolved_at__gt=F("resolve_due_at"))
    return qs.annotate(
        is_breached=ExpressionWrapper(ack | resolve, output_field=BooleanField()),
        pinned=Case(
            When(status__in=OPEN_STATUSES, severity_id__lte=2, then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        ),
    )


@dataclass
class IncidentFilters:
    status: str = ""
    severity: int | None = None
    service: str = ""
    commander: int | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    q: str = ""
    breached: bool = False


def search(qs, text: str):
    """Full-text search over titles, summaries and notes (PostgreSQL), plain
    substring matching on SQLite (`make run`)."""
    text = text.strip()
    if not text:
        return qs
    notes = TimelineEvent.objects.filter(incident=OuterRef("pk"), kind="note")
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery, SearchVector

        query = SearchQuery(text, search_type="websearch", config="english")
        notes = notes.annotate(sv=SearchVector("text", config="english")).filter(sv=query)
        return qs.annotate(sv=SearchVector("title", "summary", "reference", config="english")).filter(
            Q(sv=query) | Q(reference__iexact=text) | Exists(notes)
        )
    return qs.filter(
        Q(title__icontains=text)
        | Q(summary__icontains=text)
        | Q(reference__icontains=text)
        | Exists(notes.filter(text__icontains=text))
    )


def incident_list(user, filters: IncidentFilters):
    """Newest first, open SEV-1/2 pinned on top; breaches annotated."""
    qs = visible_incidents(user)
    if filters.status == "open":
        qs = qs.filter(status__in=OPEN_STATUSES)
    elif filters.status:
        qs = qs.filter(status=filters.status)
    if filters.severity:
        qs = qs.filter(severity_id=filters.severity)
    if filters.service:
        qs = qs.filter(
            Exists(Incident.services.through.objects.filter(incident_id=OuterRef("pk"), service__slug=filters.service))
        )
    if filters.commander:
        qs = qs.filter(commander_id=filters.commander)
    if filters.date_from:
        qs = qs.filter(declared_at__gte=filters.date_from)
    if filters.date_to:
        qs = qs.filter(declared_at__lt=filters.date_to)
    qs = _breach_annotations(search(qs, filters.q))
    if filters.breached:
        qs = qs.filter(is_breached=True)
    return (
        qs.select_related("severity", "commander")
        .prefetch_related("services")
        .order_by(F("pinned").desc(), "-declared_at", "-id")
    )


def get_incident(user, reference: str) -> Incident:
    """The incident the user may see, with its header data joined; 404 otherwise
    (a restricted incident does not reveal that it exists)."""
    qs = (
        _breach_annotations(visible_incidents(user))
        # The review (one-to-one) rides along: the incident page shows its state.
        .select_related("severity", "commander", "comms_lead", "created_by", "review__author")
        .prefetch_related("responders", "services")
    )
    incident = qs.filter(reference=reference).first()
    if incident is None:
        raise Http404("No such incident.")
    return incident


def _event_queryset(incident: Incident, kinds: list[str] | None):
    qs = TimelineEvent.objects.filter(incident=incident).select_related("author", "corrects")
    if kinds:
        qs = qs.filter(kind__in=kinds)
    return qs


def _decorate(events: list[TimelineEvent]) -> list[TimelineEvent]:
    """Set `starred` and `corrected` on a page of events: two indexed lookups
    by id (a correlated EXISTS let the planner hash the whole table instead)."""
    ids = [e.pk for e in events]
    if not ids:
        return events
    starred = set(EventStar.objects.filter(event_id__in=ids).values_list("event_id", flat=True))
    corrected = set(TimelineEvent.objects.filter(corrects_id__in=ids).values_list("corrects_id", flat=True))
    for event in events:
        event.starred = event.pk in starred
        event.corrected = event.pk in corrected
    return events


def encode_cursor(event: TimelineEvent) -> str:
    return f"{int(event.occurred_at.timestamp() * 1_000_000)}-{event.pk}"


def decode_cursor(cursor: str) -> tuple[datetime, int] | None:
    try:
        micros, pk = cursor.split("-", 1)
        return datetime.fromtimestamp(int(micros) / 1_000_000, tz=UTC), int(pk)
    except (ValueError, OverflowError, OSError):
        return None


def timeline_page(
    incident: Incident,
    *,
    kinds: list[str] | None = None,
    before: str = "",
    size: int = TIMELINE_PAGE_SIZE,
) -> tuple[list[TimelineEvent], str]:
    """One page, newest first (by occurred_at, then id), and the cursor of the
    next older page ("" at the end).

    Keyset pagination: constant cost on page 1 and on page 100.
    """
    qs = _event_queryset(incident, kinds).order_by("-occurred_at", "-id")
    position = decode_cursor(before) if before else None
    if position:
        at, pk = position
        qs = qs.filter(Q(occurred_at__lt=at) | Q(occurred_at=at, id__lt=pk))
    events = list(qs[: size + 1])
    more = len(events) > size
    events = _decorate(events[:size])
    return events, (encode_cursor(events[-1]) if more and events else "")


def timeline_since(incident: Incident, *, after: int, kinds: list[str] | None = None) -> list[TimelineEvent]:
    """Events recorded after event id `after` (what other people added), newest first."""
    events = list(_event_queryset(incident, kinds).filter(id__gt=after).order_by("id")[:SINCE_LIMIT])
    return _decorate(events[::-1])


def latest_event_id(incident: Incident) -> int:
    return TimelineEvent.objects.filter(incident=incident).order_by("-id").values_list("id", flat=True).first() or 0


def firing_signals(incident: Incident) -> list[IncidentSignal]:
    return list(IncidentSignal.objects.filter(incident=incident, firing=True).order_by("label")[:50])


def severity_levels() -> list[SeverityLevel]:
    return list(SeverityLevel.objects.order_by("level"))


def assignable_users():
    """People who can hold an incident role: SREs and up."""
    names = [Role.SRE, Role.INCIDENT_COMMANDER, Role.MANAGER, Role.ADMIN]
    return (
        get_user_model()
        .objects.filter(Q(groups__name__in=[n.value for n in names]) | Q(is_superuser=True), is_active=True)
        .distinct()
        .order_by("username")
    )


def timeline_export(incident: Incident):
    """Every event, oldest first, streamed in chunks (constant memory)."""
    return (
        TimelineEvent.objects.filter(incident=incident)
        .select_related("author")
        .annotate(starred=Exists(EventStar.objects.filter(event_id=OuterRef("pk"))))
        .order_by("occurred_at", "id")
        .iterator(chunk_size=1000)
    )


def dashboard_panel_context(request: HttpRequest) -> dict:
    qs = _breach_annotations(visible_incidents(request.user).filter(status__in=OPEN_STATUSES))
    incidents = list(
        qs.select_related("severity", "commander").order_by(F("pinned").desc(), "severity_id", "-declared_at")[:15]
    )
    return {
        "incidents": incidents,
        "open_count": qs.count() if len(incidents) == 15 else len(incidents),
        "breached_count": sum(1 for i in incidents if i.is_breached),
    }


def timeline_event(incident: Incident, pk: int) -> TimelineEvent:
    return _decorate([_event_queryset(incident, None).get(pk=pk)])[0]
