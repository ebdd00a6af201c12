import datetime
import threading

import pytest
import time_machine
from django.db import connection

from notifications.models import Delivery
from oncall import reminders, services
from oncall.models import Rotation, SentReminder, Shift, ShiftLength
from oncall.tasks import send_reminders
from opsconsole.roles import Role

# The suite-wide SEV-table fixture needs database access before fixtures that ask for `db`.
pytestmark = pytest.mark.django_db

UTC = datetime.UTC
MONDAY = datetime.datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def _deliveries():
    return Delivery.objects.filter(event="oncall.shift_reminder")


@pytest.fixture
def rotation(db, make_user, settings):
    settings.ONCALL_REMINDER_MINUTES = [24 * 60, 60]
    ana = make_user(Role.SRE, username="ana", email="ana@example.com")
    ben = make_user(Role.SRE, username="ben", email="ben@example.com")
    rotation = Rotation.objects.create(
        name="Primary SRE",
        shift_length=ShiftLength.DAILY,
        handoff_time=datetime.time(9, 0),
        timezone="UTC",
        start_date=MONDAY.date(),
    )
    with time_machine.travel(MONDAY - datetime.timedelta(days=3), tick=False):
        services.rotation_update(actor=None, rotation=rotation, member_ids=[ana.pk, ben.pk])
    return rotation


def test_reminders_go_out_a_day_and_an_hour_ahead_exactly_once(rotation):
    # Wednesday 09:00 is ben's second shift (Mon ana, Tue ben, Wed ana, Thu ben).
    thursday = MONDAY + datetime.timedelta(days=3)
    ben = _deliveries().filter(target="ben@example.com")
    with time_machine.travel(thursday - datetime.timedelta(days=1, minutes=1), tick=False):
        reminders.send_due_reminders()  # Wednesday's (ana) reminders go out now
        assert not ben.filter(payload__subject__contains="in 1 day").exists()  # a minute too early for ben's
    with time_machine.travel(thursday - datetime.timedelta(days=1), tick=False):
        send_reminders.delay().get()
        reminders.send_due_reminders()  # a second sweep: nothing new
    assert ben.count() == 1 and "On call for Primary SRE in 1 day" in ben.get().payload["subject"]
    with time_machine.travel(thursday - datetime.timedelta(minutes=59), tick=False):
        reminders.send_due_reminders()
        assert reminders.send_due_reminders() == 0
    assert ben.count() == 2
    assert "in 1 h" in ben.order_by("-pk").first().payload["subject"]
    assert SentReminder.objects.filter(user__username="ben", skipped=False).count() == 2


def test_a_shift_planned_at_short_notice_gets_only_the_shortest_reminder(rotation):
    tuesday = MONDAY + datetime.timedelta(days=1)
    with time_machine.travel(tuesday - datetime.timedelta(minutes=30), tick=False):
        # Both offsets are due at once: only "in 1 h" is sent, the day-ahead one is recorded as skipped.
        assert reminders.send_due_reminders() == 1
    assert _deliveries().count() == 1
    assert set(SentReminder.objects.values_list("offset_minutes", "skipped")) == {(60, False), (1440, True)}


def test_rematerialising_does_not_send_a_reminder_again(rotation):
    tuesday = MONDAY + datetime.timedelta(days=1)
    with time_machine.travel(tuesday - datetime.timedelta(minutes=30), tick=False):
        reminders.send_due_reminders()
        services.rotation_materialise(rotation=rotation)  # new Shift rows, same starts
        assert Shift.objects.filter(rotation=rotation, starts_at=tuesday).exists()
        assert reminders.send_due_reminders() == 0
    assert _deliveries().count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_send_each_reminder_once(make_user, settings):
    settings.ONCALL_REMINDER_MINUTES = [60]
    ana = make_user(Role.SRE, username="ana", email="ana@example.com")
    rotation = Rotation.objects.create(name="Race", shift_length=ShiftLength.DAILY, start_date=MONDAY.date())
    now = MONDAY - datetime.timedelta(minutes=30)
    Shift.objects.create(rotation=rotation, user=ana, starts_at=MONDAY, ends_at=MONDAY + datetime.timedelta(days=1))
    barrier = threading.Barrier(2)
    counts = []

    def sweep():
        try:
            barrier.wait()
            counts.append(reminders.send_due_reminders(now=now))
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(counts) == [0, 1]
    assert _deliveries().count() == 1
