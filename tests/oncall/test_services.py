import datetime
import threading
import zoneinfo

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction

from notifications.models import Delivery
from oncall import schedule, services
from oncall.models import Override, Rotation, Shift, ShiftLength
from opsconsole.models import AuditEntry, Service
from opsconsole.roles import Role

# The suite-wide SEV-table fixture needs database access before fixtures that ask for `db`.
pytestmark = pytest.mark.django_db

H = datetime.timedelta(hours=1)
UTC = datetime.UTC
LONDON = zoneinfo.ZoneInfo("Europe/London")


@pytest.fixture
def rotation(db):
    return Rotation.objects.create(
        name="Primary SRE",
        timezone="Europe/London",
        shift_length=ShiftLength.DAILY,
        handoff_time=datetime.time(9, 0),
        start_date=datetime.date(2026, 3, 23),
    )


def _local(shift_or_dt) -> datetime.datetime:
    return shift_or_dt.astimezone(LONDON)


@time_machine.travel(datetime.datetime(2026, 3, 23, 12, 0, tzinfo=UTC), tick=False)
def test_daily_handoff_stays_at_nine_local_across_the_spring_dst_change(rotation, make_user):
    a, b = make_user(Role.SRE, username="ana"), make_user(Role.SRE, username="ben")
    services.rotation_update(actor=None, rotation=rotation, member_ids=[a.pk, b.pk])

    shifts = list(Shift.objects.filter(rotation=rotation).order_by("starts_at")[:10])
    # Every handoff at 09:00 London: GMT before 29 March 2026, BST after.
    assert all(_local(s.starts_at).time() == datetime.time(9, 0) for s in shifts)
    by_day = {_local(s.starts_at).date(): s for s in shifts}
    dst_day = by_day[datetime.date(2026, 3, 28)]  # Sat 09:00 GMT → Sun 09:00 BST
    assert dst_day.ends_at - dst_day.starts_at == 23 * H
    assert by_day[datetime.date(2026, 3, 27)].ends_at - by_day[datetime.date(2026, 3, 27)].starts_at == 24 * H
    # Members alternate from the start date: 23 March is ana's (k=0).
    assert [s.user.username for s in shifts[:4]] == ["ana", "ben", "ana", "ben"]
    # And the schedule never overlaps and leaves no gap.
    assert all(x.ends_at == y.starts_at for x, y in zip(shifts, shifts[1:], strict=False))


@time_machine.travel(datetime.datetime(2026, 10, 20, 12, 0, tzinfo=UTC), tick=False)
def test_override_across_the_autumn_dst_change_replaces_exactly_its_range(rotation, make_user):
    a, b, cover = (make_user(Role.SRE, username=n) for n in ("ana", "ben", "cy"))
    rotation.start_date = datetime.date(2026, 10, 19)
    rotation.save()
    services.rotation_update(actor=None, rotation=rotation, member_ids=[a.pk, b.pk])
    manager = make_user(Role.MANAGER)
    # Cy covers Sat 24 Oct 18:00 → Mon 26 Oct 06:00 London; clocks go back on Sun 25 Oct.
    start = datetime.datetime(2026, 10, 24, 18, 0, tzinfo=LONDON)
    end = datetime.datetime(2026, 10, 26, 6, 0, tzinfo=LONDON)
    services.override_create(actor=manager, rotation=rotation, user=cover, starts_at=start, ends_at=end, kind="holiday")

    shifts = list(Shift.objects.filter(rotation=rotation).order_by("starts_at"))
    covered = [s for s in shifts if s.user == cover]
    assert len(covered) == 1 and covered[0].starts_at == start and covered[0].ends_at == end
    # 18:00 BST → 06:00 GMT two days later is 37 hours (the night of the change has 25).
    assert covered[0].ends_at - covered[0].starts_at == 37 * H
    assert covered[0].source == Shift.Source.OVERRIDE
    before = next(s for s in shifts if s.ends_at == start)
    after = next(s for s in shifts if s.starts_at == end)
    # Sat 24 Oct 09:00 BST (k=5 → ben) is cut at 18:00; Mon 26 Oct 06:00 GMT continues
    # Sun 25's shift (k=6 → ana), which runs to Mon 09:00 GMT.
    assert (before.user.username, _local(before.starts_at).hour) == ("ben", 9)
    assert (after.user.username, _local(after.ends_at).hour, _local(after.ends_at).utcoffset()) == (
        "ana",
        9,
        datetime.timedelta(0),
    )
    assert all(x.ends_at == y.starts_at for x, y in zip(shifts, shifts[1:], strict=False))


def test_weekly_and_custom_lengths():
    base = schedule.base_segments(
        member_ids=[1, 2],
        start_date=datetime.date(2026, 1, 5),
        handoff_time=datetime.time(9, 0),
        hours=7 * 24,
        tz_name="America/New_York",
        window_start=datetime.datetime(2026, 3, 1, tzinfo=UTC),
        window_end=datetime.datetime(2026, 3, 20, tzinfo=UTC),
    )
    ny = zoneinfo.ZoneInfo("America/New_York")
    assert [s.starts_at.astimezone(ny).strftime("%a %H:%M") for s in base] == ["Mon 09:00"] * len(base)
    # The week containing 8 March 2026 (US DST) is an hour short.
    assert {(s.ends_at - s.starts_at) for s in base} == {7 * 24 * H, 7 * 24 * H - H}
    twelve = schedule.base_segments(
        member_ids=[1, 2, 3],
        start_date=datetime.date(2026, 1, 5),
        handoff_time=datetime.time(8, 0),
        hours=12,
        tz_name="UTC",
        window_start=datetime.datetime(2026, 1, 5, 8, tzinfo=UTC),
        window_end=datetime.datetime(2026, 1, 6, 20, tzinfo=UTC),
    )
    assert [(s.user_id, s.starts_at.hour) for s in twelve] == [(1, 8), (2, 20), (3, 8)]


def test_overlapping_override_is_refused_with_a_clear_message(rotation, make_user):
    manager, sam, ic = make_user(Role.MANAGER), make_user(Role.SRE, first_name="Sam"), make_user(Role.SRE)
    start = datetime.datetime(2030, 1, 1, 9, tzinfo=UTC)
    services.override_create(actor=manager, rotation=rotation, user=sam, starts_at=start, ends_at=start + 12 * H)

    with pytest.raises(ValidationError) as refused:
        services.override_create(
            actor=manager, rotation=rotation, user=ic, starts_at=start + 11 * H, ends_at=start + 20 * H
        )

    message = refused.value.messages[0]
    assert "overlaps Sam's override" in message and "Primary SRE" in message and "Europe/London" in message
    assert Override.objects.count() == 1
    assert AuditEntry.objects.filter(action="oncall.override_create").count() == 1


def test_override_needs_schedule_edit_and_a_valid_range(rotation, make_user):
    sre = make_user(Role.SRE)
    start = datetime.datetime(2030, 1, 1, 9, tzinfo=UTC)
    with pytest.raises(PermissionDenied):
        services.override_create(actor=sre, rotation=rotation, user=sre, starts_at=start, ends_at=start + H)
    with pytest.raises(ValidationError):
        services.override_create(
            actor=make_user(Role.MANAGER), rotation=rotation, user=sre, starts_at=start, ends_at=start
        )
    assert not Override.objects.exists()


@pytest.mark.parametrize("model", [Shift, Override])
def test_the_database_refuses_overlaps_even_without_the_service(rotation, make_user, model):
    sre = make_user(Role.SRE)
    start = datetime.datetime(2030, 1, 1, 9, tzinfo=UTC)
    model.objects.create(rotation=rotation, user=sre, starts_at=start, ends_at=start + 12 * H)
    # Touching is fine ([start, end) ranges).
    model.objects.create(rotation=rotation, user=sre, starts_at=start + 12 * H, ends_at=start + 24 * H)
    with pytest.raises(IntegrityError) as refused, transaction.atomic():
        model.objects.create(rotation=rotation, user=sre, starts_at=start + 6 * H, ends_at=start + 7 * H)
    assert "no_overlap" in str(refused.value)


@pytest.mark.django_db(transaction=True)
def test_concurrent_overlapping_overrides_one_wins(make_user):
    rotation = Rotation.objects.create(name="Race")
    manager = make_user(Role.MANAGER)
    people = [make_user(Role.SRE), make_user(Role.SRE)]
    start = datetime.datetime(2030, 1, 1, 9, tzinfo=UTC)
    barrier = threading.Barrier(2)
    outcomes = []

    def add(user):
        try:
            barrier.wait()
            services.override_create(actor=manager, rotation=rotation, user=user, starts_at=start, ends_at=start + H)
            outcomes.append("ok")
        except ValidationError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=add, args=(p,)) for p in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok", "refused"]
    assert Override.objects.count() == 1


@time_machine.travel(datetime.datetime(2026, 6, 1, 12, 0, tzinfo=UTC), tick=False)
def test_people_whose_shifts_change_are_told_once(rotation, make_user):
    a = make_user(Role.SRE, username="ana", email="ana@example.com")
    b = make_user(Role.SRE, username="ben", email="ben@example.com")
    c = make_user(Role.SRE, username="cy", email="cy@example.com")
    rotation.start_date = datetime.date(2026, 6, 1)
    services.rotation_update(actor=None, rotation=rotation, member_ids=[a.pk, b.pk])
    assert not Delivery.objects.filter(event="oncall.schedule_changed").exists()  # first schedule: news to nobody

    start = datetime.datetime(2026, 6, 3, 12, tzinfo=UTC)  # inside ana's 3 June shift
    services.override_create(
        actor=make_user(Role.MANAGER), rotation=rotation, user=c, starts_at=start, ends_at=start + 2 * H
    )

    told = Delivery.objects.filter(event="oncall.schedule_changed", channel="email")
    assert sorted(told.values_list("target", flat=True)) == ["ana@example.com", "cy@example.com"]  # not ben
    sent = Delivery.objects.filter(event="oncall.schedule_changed").count()
    services.rotation_materialise(rotation=rotation)  # nothing new: nobody is told again
    assert Delivery.objects.filter(event="oncall.schedule_changed").count() == sent


@time_machine.travel(datetime.datetime(2026, 6, 1, 12, 0, tzinfo=UTC), tick=False)
def test_schedule_changes_reach_the_rotation_channel_without_personal_details(rotation, make_user, settings):
    """The rotation's services' webhooks (one message per distinct hook) name who
    changed; each person's shift times and the override's reason stay in their
    own e-mail and the console."""
    settings.NOTIFY_WEBHOOK_URL = "http://127.0.0.1:9/global"
    api = Service.objects.create(name="API", slug="api", webhook_url="http://127.0.0.1:9/api")
    web = Service.objects.create(name="Web", slug="web", webhook_url="http://127.0.0.1:9/api")  # same hook
    db = Service.objects.create(name="DB", slug="db")  # no hook of its own: the global one
    rotation.services.set([api, web, db])
    a = make_user(Role.SRE, username="ana", first_name="Ana", email="ana@example.com")
    b = make_user(Role.SRE, username="ben", email="ben@example.com")
    c = make_user(Role.SRE, username="cy", first_name="Cy", email="")  # no address: the channel still says so
    rotation.start_date = datetime.date(2026, 6, 1)
    services.rotation_update(actor=None, rotation=rotation, member_ids=[a.pk, b.pk])
    start = datetime.datetime(2026, 6, 3, 12, tzinfo=UTC)
    services.override_create(
        actor=make_user(Role.MANAGER),
        rotation=rotation,
        user=c,
        starts_at=start,
        ends_at=start + 2 * H,
        reason="Ana's hospital appointment",
    )
    hooks = Delivery.objects.filter(event="oncall.schedule_changed", channel="webhook")
    assert sorted(hooks.values_list("target", flat=True)) == ["http://127.0.0.1:9/api", "http://127.0.0.1:9/global"]
    for hook in hooks:
        text = str(hook.payload)
        assert "Ana, Cy" in text and "hospital" not in text and "03 Jun" not in text and "12:00" not in text
        assert hook.subject_type == "oncall.rotation" and not hook.restricted
    mail = Delivery.objects.get(event="oncall.schedule_changed", target="ana@example.com")
    assert "Wed 03 Jun" in mail.payload["body"] and "hospital" not in mail.payload["body"]


def test_hand_entered_shifts_become_overrides_so_nobody_changes(rotation, make_user):
    """The data migration's function, on rows like the old hand-entered ones."""
    from importlib import import_module

    from django.apps import apps

    migration = import_module("oncall.migrations.0002_schedule")
    sam = make_user(Role.SRE)
    start = datetime.datetime(2030, 1, 1, 9, tzinfo=UTC)
    for k in range(3):
        Shift.objects.create(
            rotation=rotation, user=sam, starts_at=start + 24 * k * H, ends_at=start + 24 * k * H + 8 * H
        )

    migration.shifts_to_overrides(apps, None)

    overrides = list(Override.objects.filter(rotation=rotation).order_by("starts_at"))
    assert [(o.starts_at, o.ends_at, o.user_id) for o in overrides] == [
        (start + 24 * k * H, start + 24 * k * H + 8 * H, sam.pk) for k in range(3)
    ]
    # Recomputing a rotation without members gives back exactly those shifts.
    with time_machine.travel(start - 24 * H, tick=False):
        services.rotation_materialise(rotation=rotation)
    assert list(Shift.objects.filter(rotation=rotation).values_list("starts_at", "ends_at", "source")) == [
        (o.starts_at, o.ends_at, "override") for o in overrides
    ]
