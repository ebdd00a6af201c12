"""opsconsole.bulk.insert_many writes exactly the rows bulk_create writes."""

import datetime

import pytest
from django.db import connection
from django.forms.models import model_to_dict
from django.utils import timezone

from incidents import services as incident_services
from incidents.models import EventKind, TimelineEvent
from notifications.models import Delivery
from opsconsole.bulk import insert_many
from opsconsole.models import Service
from opsconsole.roles import Role

pytestmark = pytest.mark.django_db


def _events(incident, tag: str) -> list[TimelineEvent]:
    now = timezone.now().replace(microsecond=123456)
    return [
        TimelineEvent(
            incident=incident,
            kind=EventKind.ESCALATION if n % 2 else EventKind.NOTE,  # enum members and plain strings
            author_label=f"{tag} {n}",
            text='quotes " and \\ backslashes, {braces}, commas, NULL',
            html="<p>é ✓</p>",
            occurred_at=now - datetime.timedelta(minutes=n),
            recorded_at=now,
            data={"n": n, "nested": {"list": [1, None, "x"]}, "text": 'a "b" \\ c'} if n else {},
        )
        for n in range(3)
    ]


def _row(obj) -> dict:
    fresh = type(obj).objects.get(pk=obj.pk)
    return {k: v for k, v in model_to_dict(fresh).items() if k not in ("id", "author_label")}


def test_the_rows_are_those_bulk_create_writes(make_user):
    ic = make_user(Role.INCIDENT_COMMANDER)
    incident = incident_services.incident_declare(actor=ic, title="Bulk", severity=2)
    fast, django = insert_many(_events(incident, "fast")), TimelineEvent.objects.bulk_create(_events(incident, "orm"))
    assert all(e.pk and not e._state.adding for e in fast)
    assert [_row(e) for e in fast] == [_row(e) for e in django]
    assert [TimelineEvent.objects.get(pk=e.pk).author_label for e in fast] == ["fast 0", "fast 1", "fast 2"]


def test_nullable_columns_and_foreign_keys(make_user):
    service = Service.objects.create(slug="api", name="API")

    def deliveries():
        return [
            Delivery(
                channel=Delivery.Channel.EMAIL,
                target=f"p{n}@example.com",
                event="incident.escalated",
                service=service if n == 1 else None,  # a column of NULLs but one
                payload={"subject": "s", "body": "b"},
                subject_type="",
                subject_id=str(n),
            )
            for n in range(3)
        ]

    fast, django = insert_many(deliveries()), Delivery.objects.bulk_create(deliveries())
    assert [_row(d) for d in fast] == [_row(d) for d in django]
    assert [d.service_id for d in fast] == [None, service.pk, None]


def test_a_bad_row_writes_nothing(make_user):
    from django.db import DataError, transaction

    ic = make_user(Role.INCIDENT_COMMANDER)
    incident = incident_services.incident_declare(actor=ic, title="Bulk", severity=2)
    rows = _events(incident, "bad")
    rows[2].author_label = "x" * 1000  # longer than the column
    before = TimelineEvent.objects.count()
    with pytest.raises(DataError), transaction.atomic():
        insert_many(rows)
    assert TimelineEvent.objects.count() == before
    assert connection.vendor == "postgresql"  # the binary path was the one tested
