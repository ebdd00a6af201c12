"""The database itself refuses to rewrite a timeline."""

import pytest
from django.db import DatabaseError, connection, transaction

from incidents.models import TimelineEvent
from opsconsole.roles import Role

from .factories import declare

pytestmark = pytest.mark.django_db


def _event(make_user):
    return declare(make_user(Role.SRE)).events.get()


def test_sql_update_is_refused(make_user):
    event = _event(make_user)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("UPDATE incidents_timelineevent SET text = 'rewritten' WHERE id = %s", [event.pk])
    assert TimelineEvent.objects.get(pk=event.pk).text == event.text


def test_sql_delete_is_refused(make_user):
    event = _event(make_user)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM incidents_timelineevent WHERE id = %s", [event.pk])
    assert TimelineEvent.objects.filter(pk=event.pk).exists()


def test_orm_save_and_delete_are_refused(make_user):
    event = _event(make_user)
    event.text = "changed"
    with pytest.raises(DatabaseError), transaction.atomic():
        event.save()
    with pytest.raises(DatabaseError), transaction.atomic():
        TimelineEvent.objects.filter(pk=event.pk).delete()
    assert TimelineEvent.objects.filter(pk=event.pk, text__startswith="Declared").exists()
