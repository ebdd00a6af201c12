import datetime
import zoneinfo

import icalendar
import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from oncall import services
from oncall.models import CalendarFeed, Override, Rotation, Shift
from opsconsole.models import AuditEntry, Service
from opsconsole.roles import Role
from tests.oncall.factories import shift

INDEX = reverse("oncall:index")
UTC = datetime.UTC


def _fill(rotations: int, shifts_each: int, user) -> None:
    for _ in range(rotations):
        rotation = Rotation.objects.create(name=f"Rotation {Rotation.objects.count() + 1}")
        rotation.services.add(*Service.objects.all()[:2])
        for s in range(shifts_each):
            shift(rotation, user, -1 + 12 * s, 11 + 12 * s)
        Override.objects.create(
            rotation=rotation,
            user=user,
            starts_at=timezone.now() + datetime.timedelta(days=3),
            ends_at=timezone.now() + datetime.timedelta(days=4),
        )


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.VIEWER, Role.MANAGER])
def test_index_query_count_is_constant(client_as, make_user, django_assert_max_num_queries, role):
    client = client_as(role)
    Service.objects.create(name="PostgreSQL", slug="postgresql")
    Service.objects.create(name="Redis", slug="redis")
    sre = make_user(Role.SRE)
    _fill(1, 2, sre)
    with django_assert_max_num_queries(12):
        small = client.get(INDEX)
    _fill(15, 20, sre)
    with django_assert_max_num_queries(12):
        large = client.get(INDEX)
    assert small.status_code == large.status_code == 200
    assert large.content.decode().count('data-testid="rotation"') == 16


@pytest.mark.django_db
def test_index_shows_who_is_on_call_now_and_next_in_the_viewers_timezone(client_as, make_user):
    client = client_as(Role.VIEWER, timezone="Asia/Tokyo")
    rotation = Rotation.objects.create(name="Primary SRE")
    sam = make_user(Role.SRE, first_name="Sam", last_name="Reyes")
    kim = make_user(Role.SRE, first_name="Kim", last_name="Lee")
    now_shift = shift(rotation, sam, -1, 11)
    shift(rotation, kim, 11, 23)
    Rotation.objects.create(name="Empty rotation")

    html = client.get(INDEX).content.decode()

    tokyo_end = now_shift.ends_at.astimezone(zoneinfo.ZoneInfo("Asia/Tokyo"))
    assert f'until <time datetime="{tokyo_end.isoformat()}">{tokyo_end:%a %d %b %H:%M}</time>' in html
    assert "Sam Reyes" in html and "<strong>Next:</strong> Kim Lee" in html and "All services" in html
    assert "this rotation is uncovered" in html  # the empty rotation
    assert "Add an override" not in html and "Remove</button>" not in html  # Viewers do not edit


@pytest.mark.django_db
@time_machine.travel(datetime.datetime(2030, 1, 10, tzinfo=UTC), tick=False)
def test_manager_adds_an_override_without_javascript(client_as, make_user):
    client = client_as(Role.MANAGER, timezone="America/New_York")
    rotation = Rotation.objects.create(name="Primary SRE")
    sre = make_user(Role.SRE)

    response = client.post(
        reverse("oncall:override_add", args=[rotation.pk]),
        {"user": sre.pk, "starts_at": "2030-01-15T08:00", "ends_at": "2030-01-15T20:00", "kind": "holiday"},
    )

    assert response.status_code == 302 and response["Location"].endswith(f"#rotation-{rotation.pk}")
    created = Override.objects.get()
    # Entered in the manager's timezone (New York, UTC-5 in January), stored in UTC.
    assert created.starts_at == datetime.datetime(2030, 1, 15, 13, 0, tzinfo=UTC)
    assert created.user == sre and created.kind == "holiday"
    assert AuditEntry.objects.filter(action="oncall.override_create", actor_id=client.user.pk).exists()
    assert Shift.objects.filter(rotation=rotation, user=sre, starts_at=created.starts_at).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("htmx", [True, False])
def test_overlapping_override_shows_the_error_and_changes_nothing(client_as, make_user, htmx):
    client = client_as(Role.ADMIN)
    rotation = Rotation.objects.create(name="Primary SRE")
    sre = make_user(Role.SRE, username="sam")
    start = datetime.datetime(2030, 1, 1, 8, tzinfo=UTC)
    services.override_create(
        actor=None, rotation=rotation, user=sre, starts_at=start, ends_at=start + datetime.timedelta(hours=12)
    )

    response = client.post(
        reverse("oncall:override_add", args=[rotation.pk]),
        {"user": sre.pk, "starts_at": "2030-01-01T10:00", "ends_at": "2030-01-01T14:00", "kind": "swap"},
        headers={"HX-Request": "true"} if htmx else {},
    )

    html = response.content.decode()
    assert response.status_code == 200 and "overlaps sam&#x27;s override" in html
    if htmx:
        assert html.lstrip().startswith(f'<section class="card stack rotation" id="rotation-{rotation.pk}"')
    assert Override.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "data, message",
    [
        ({"starts_at": "2030-01-01T10:00", "ends_at": "2030-01-01T09:00"}, "must end after it starts"),
        ({"starts_at": "yesterday", "ends_at": "2030-01-01T09:00"}, "Enter a valid date/time"),
        ({"starts_at": "2030-01-01T08:00", "ends_at": "2030-01-01T09:00", "user": "999999"}, "Select a valid choice"),
        ({"starts_at": "2030-01-01T08:00", "ends_at": "2030-01-01T09:00", "kind": "bribe"}, "Select a valid choice"),
    ],
)
def test_bad_override_input_is_a_form_error(client_as, make_user, data, message):
    client = client_as(Role.MANAGER)
    rotation = Rotation.objects.create(name="Primary SRE")
    data = {"user": make_user(Role.SRE).pk, "kind": "swap"} | data

    response = client.post(reverse("oncall:override_add", args=[rotation.pk]), data)

    assert response.status_code == 200 and message in response.content.decode()
    assert not Override.objects.exists() and not Shift.objects.exists()


@pytest.mark.django_db
@time_machine.travel(datetime.datetime(2026, 5, 4, 7, 0, tzinfo=UTC), tick=False)
def test_manager_sets_members_and_shift_length_and_the_shifts_are_computed(client_as, make_user):
    client = client_as(Role.MANAGER)
    rotation = Rotation.objects.create(name="Primary SRE")
    make_user(Role.SRE, username="ana")
    make_user(Role.SRE, username="ben")

    response = client.post(
        reverse("oncall:rotation_edit", args=[rotation.pk]),
        {
            "shift_length": "daily",
            "custom_hours": "12",
            "handoff_time": "09:00",
            "timezone": "Europe/Paris",
            "start_date": "2026-05-04",
            "members": "ana\nben\n",
        },
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 200 and "shifts were recomputed" in response.content.decode()
    first = Shift.objects.filter(rotation=rotation).order_by("starts_at").first()
    assert first.user.username == "ana" and first.starts_at == datetime.datetime(2026, 5, 4, 7, 0, tzinfo=UTC)
    assert Shift.objects.filter(rotation=rotation).count() == 56  # ONCALL_SCHEDULE_DAYS of daily shifts
    assert AuditEntry.objects.filter(action="oncall.rotation_update").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "members, message", [("ana\nnobody", "Unknown or inactive users: nobody"), ("ana\nana", "once")]
)
def test_bad_members_are_refused(client_as, make_user, members, message):
    client = client_as(Role.MANAGER)
    rotation = Rotation.objects.create(name="Primary SRE")
    make_user(Role.SRE, username="ana")
    data = {
        "shift_length": "daily",
        "custom_hours": "12",
        "handoff_time": "09:00",
        "timezone": "UTC",
        "start_date": "2026-05-04",
        "members": members,
    }
    response = client.post(reverse("oncall:rotation_edit", args=[rotation.pk]), data)
    assert response.status_code == 200 and message in response.content.decode()
    assert not rotation.members.exists() and not Shift.objects.exists()


@pytest.mark.django_db
def test_calendar_shows_the_coming_weeks_in_constant_queries(client_as, make_user, django_assert_max_num_queries):
    client = client_as(Role.VIEWER)
    sre = make_user(Role.SRE, first_name="Sam")
    _fill(1, 4, sre)
    with django_assert_max_num_queries(8):
        small = client.get(reverse("oncall:calendar"))
    _fill(6, 40, sre)
    with django_assert_max_num_queries(8):
        large = client.get(reverse("oncall:calendar"))
    html = large.content.decode()
    assert small.status_code == large.status_code == 200
    assert html.count("<tr") == 1 + 28 and "Sam" in html


@pytest.mark.django_db
def test_calendar_feed_is_private_revocable_and_parses(client_as, client, make_user):
    owner = client_as(Role.SRE, username="sam", first_name="Sam")
    rotation = Rotation.objects.create(name="Primary SRE", timezone="Europe/London")
    mine = shift(rotation, owner.user, 1, 13)
    shift(rotation, make_user(Role.SRE), 13, 25)  # someone else's

    page = owner.post(reverse("oncall:my_feed"), {"action": "create"})
    url = page.context["feed_url"]
    path = url.split("testserver", 1)[1]
    owner.logout()  # calendar apps fetch without a session

    response = client.get(path)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/calendar")
    cal = icalendar.Calendar.from_ical(response.content)
    events = list(cal.walk("VEVENT"))
    assert len(events) == 1
    event = events[0]
    assert event["UID"] == f"oncall-{rotation.pk}-{int(mine.starts_at.timestamp())}@opsconsole"
    assert (
        event.decoded("DTSTART") == mine.starts_at.replace(microsecond=0) or event.decoded("DTSTART") == mine.starts_at
    )
    assert str(event["SUMMARY"]) == "On call: Primary SRE" and "DTSTAMP" in event
    assert event["DTSTART"].params["TZID"] == "Europe/London"
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["Europe/London"]
    assert cal["VERSION"] == "2.0" and "PRODID" in cal
    assert CalendarFeed.objects.get().token_hash != path  # only the hash is stored

    owner.force_login(owner.user)
    owner.post(reverse("oncall:my_feed"), {"action": "revoke"})
    assert client.get(path).status_code == 404
    assert client.get(reverse("oncall:feed", args=["not-a-token"])).status_code == 404
    assert AuditEntry.objects.filter(action__in=["oncall.feed_create", "oncall.feed_revoke"]).count() == 2


@pytest.mark.django_db
def test_a_new_feed_address_kills_the_old_one(client_as):
    client = client_as(Role.VIEWER)
    first = client.post(reverse("oncall:my_feed"), {"action": "create"}).context["feed_url"].split("testserver", 1)[1]
    second = client.post(reverse("oncall:my_feed"), {"action": "create"}).context["feed_url"].split("testserver", 1)[1]
    assert client.get(first).status_code == 404 and client.get(second).status_code == 200


@pytest.mark.django_db
def test_manager_removes_an_override_with_htmx(client_as, make_user):
    client = client_as(Role.MANAGER)
    rotation = Rotation.objects.create(name="Primary SRE")
    start = timezone.now() + datetime.timedelta(hours=1)
    gone = services.override_create(
        actor=None,
        rotation=rotation,
        user=make_user(Role.SRE),
        starts_at=start,
        ends_at=start + datetime.timedelta(hours=2),
    )
    assert Shift.objects.count() == 1

    response = client.post(reverse("oncall:override_delete", args=[gone.pk]), headers={"HX-Request": "true"})

    assert response.status_code == 200 and "Removed" in response.content.decode()
    assert not Override.objects.exists() and not Shift.objects.exists()
    assert AuditEntry.objects.filter(action="oncall.override_delete").exists()


@pytest.mark.django_db
def test_dashboard_panel_shows_who_is_on_call_now_and_next(client_as, make_user, django_assert_max_num_queries):
    client = client_as(Role.VIEWER)
    rotation = Rotation.objects.create(name="Primary SRE")
    shift(rotation, make_user(Role.SRE, first_name="Sam", last_name="Reyes"), -1, 1)
    shift(rotation, make_user(Role.SRE, first_name="Kim", last_name="Lee"), 1, 3)
    Rotation.objects.create(name="Database")

    html = client.get(reverse("dashboard")).content.decode()

    assert 'data-testid="on-call-panel"' in html
    assert "Sam Reyes" in html and "next Kim Lee" in html and "nobody" in html


@pytest.mark.django_db
def test_metrics_export_uncovered_rotations(client, make_user):
    rotation = Rotation.objects.create(name="Primary SRE")
    shift(rotation, make_user(Role.SRE), -1, 1)
    Rotation.objects.create(name="Database")

    assert "opsconsole_oncall_uncovered_rotations 1.0" in client.get(reverse("metrics")).content.decode()


@pytest.mark.django_db
def test_demo_seed_is_idempotent():
    from io import StringIO

    from django.core.management import call_command

    call_command("seed_demo", stdout=StringIO())
    counts = (Rotation.objects.count(), Shift.objects.count(), Override.objects.count())
    call_command("seed_demo", stdout=StringIO())

    assert counts == (Rotation.objects.count(), Shift.objects.count(), Override.objects.count())
    assert counts[0] == 2 and counts[1] > 100
    database = Rotation.objects.get(name="Database")
    assert [s.slug for s in database.services.all()] == ["postgresql"]
    now = timezone.now()
    primary_now = Shift.objects.get(rotation__name="Primary SRE", starts_at__lte=now, ends_at__gt=now)
    assert primary_now.user.username in {"sre", "commander"}
    assert set(Shift.objects.filter(rotation=database).values_list("user__username", flat=True)) == {
        "manager",
        "admin",
    }


@pytest.mark.django_db
def test_admin_adds_overrides_through_the_service(admin_client, make_user):
    rotation = Rotation.objects.create(name="Primary SRE")
    sre = make_user(Role.SRE)
    start = (timezone.now() + datetime.timedelta(days=1)).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    url = reverse("admin:oncall_override_add")

    def post(begin, end):
        return admin_client.post(
            url,
            {
                "rotation": rotation.pk,
                "user": sre.pk,
                "starts_at_0": begin.strftime("%Y-%m-%d"),
                "starts_at_1": begin.strftime("%H:%M:%S"),
                "ends_at_0": end.strftime("%Y-%m-%d"),
                "ends_at_1": end.strftime("%H:%M:%S"),
                "kind": "swap",
                "reason": "",
            },
        )

    ok = post(start, start + datetime.timedelta(hours=12))
    assert ok.status_code == 302, ok.context["adminform"].form.errors if ok.context else ok
    refused = post(start + datetime.timedelta(hours=1), start + datetime.timedelta(hours=2))
    assert refused.status_code == 200 and "overlaps" in refused.content.decode()
    assert Override.objects.count() == 1
    assert AuditEntry.objects.filter(action="oncall.override_create").count() == 1
    assert Shift.objects.filter(rotation=rotation, user=sre).count() == 1  # materialised


@pytest.mark.django_db
def test_admin_pages_load_and_shifts_are_read_only(admin_client):
    rotation = Rotation.objects.create(name="Primary SRE")
    assert admin_client.get(reverse("admin:oncall_rotation_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:oncall_rotation_change", args=[rotation.pk])).status_code == 200
    assert admin_client.get(reverse("admin:oncall_shift_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:oncall_override_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:oncall_shift_add")).status_code == 403


@pytest.mark.django_db
def test_a_feed_remembers_when_it_was_last_fetched_writing_at_most_once_a_minute(client_as, client):
    owner = client_as(Role.SRE, username="sam")
    t0 = datetime.datetime(2026, 11, 2, 9, 0, tzinfo=datetime.UTC)
    with time_machine.travel(t0, tick=False):
        path = owner.post(reverse("oncall:my_feed"), {"action": "create"}).context["feed_url"].split("testserver", 1)[1]
    assert "never" in owner.get(reverse("oncall:my_feed")).content.decode()
    feed = CalendarFeed.objects.get()
    assert feed.last_used_at is None

    with time_machine.travel(t0 + datetime.timedelta(seconds=5), tick=False):
        assert client.get(path).status_code == 200
    assert CalendarFeed.objects.get().last_used_at == t0 + datetime.timedelta(seconds=5)
    # Within the minute: read the feed and the shifts, no write at all.
    with time_machine.travel(t0 + datetime.timedelta(seconds=50), tick=False), CaptureQueriesContext(connection) as ctx:
        assert client.get(path).status_code == 200
    assert not [q for q in ctx.captured_queries if q["sql"].startswith("UPDATE")]
    assert CalendarFeed.objects.get().last_used_at == t0 + datetime.timedelta(seconds=5)
    with time_machine.travel(t0 + datetime.timedelta(minutes=2), tick=False):
        assert client.get(path).status_code == 200
    assert CalendarFeed.objects.get().last_used_at == t0 + datetime.timedelta(minutes=2)

    for page in (reverse("oncall:my_feed"), reverse("oncall:index")):
        html = owner.get(page).content.decode()
        assert 'data-testid="feed-last-used"' in html and "2026-11-02 09:02" in html, page
