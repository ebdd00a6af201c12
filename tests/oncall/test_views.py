import datetime
import zoneinfo

import pytest
from django.urls import reverse
from django.utils import timezone

from oncall.models import Rotation, Shift
from opsconsole.models import AuditEntry, Service
from opsconsole.roles import Role
from tests.oncall.factories import shift

INDEX = reverse("oncall:index")


def _fill(rotations: int, shifts_each: int, user) -> None:
    for _ in range(rotations):
        rotation = Rotation.objects.create(name=f"Rotation {Rotation.objects.count() + 1}")
        rotation.services.add(*Service.objects.all()[:2])
        for s in range(shifts_each):
            shift(rotation, user, -1 + 12 * s, 11 + 12 * s)


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.VIEWER, Role.MANAGER])
def test_index_query_count_is_constant(client_as, make_user, django_assert_max_num_queries, role):
    client = client_as(role)
    Service.objects.create(name="PostgreSQL", slug="postgresql")
    Service.objects.create(name="Redis", slug="redis")
    sre = make_user(Role.SRE)
    _fill(1, 2, sre)
    with django_assert_max_num_queries(9):
        small = client.get(INDEX)
    _fill(15, 20, sre)
    with django_assert_max_num_queries(9):
        large = client.get(INDEX)
    assert small.status_code == large.status_code == 200
    assert large.content.decode().count('data-testid="rotation"') == 16


@pytest.mark.django_db
def test_index_shows_who_is_on_call_in_the_viewers_timezone(client_as, make_user):
    client = client_as(Role.VIEWER, timezone="Asia/Tokyo")
    rotation = Rotation.objects.create(name="Primary SRE")
    sam = make_user(Role.SRE, first_name="Sam", last_name="Reyes")
    now_shift = shift(rotation, sam, -1, 11)
    Rotation.objects.create(name="Empty rotation")

    html = client.get(INDEX).content.decode()

    tokyo_end = now_shift.ends_at.astimezone(zoneinfo.ZoneInfo("Asia/Tokyo"))
    assert f'until <time datetime="{tokyo_end.isoformat()}">{tokyo_end:%a %d %b %H:%M}</time>' in html
    assert "Sam Reyes" in html and "All services" in html
    assert "this rotation is uncovered" in html  # the empty rotation
    assert "Add a shift" not in html and "Remove</button>" not in html  # Viewers do not edit


@pytest.mark.django_db
def test_manager_adds_a_shift_without_javascript(client_as, make_user):
    client = client_as(Role.MANAGER, timezone="America/New_York")
    rotation = Rotation.objects.create(name="Primary SRE")
    sre = make_user(Role.SRE)

    response = client.post(
        reverse("oncall:shift_add", args=[rotation.pk]),
        {"user": sre.pk, "starts_at": "2030-01-15T08:00", "ends_at": "2030-01-15T20:00"},
    )

    assert response.status_code == 302 and response["Location"].endswith(f"#rotation-{rotation.pk}")
    created = Shift.objects.get()
    # Entered in the manager's timezone (New York, UTC-5 in January), stored in UTC.
    assert created.starts_at == datetime.datetime(2030, 1, 15, 13, 0, tzinfo=datetime.UTC)
    assert created.user == sre
    assert AuditEntry.objects.filter(action="oncall.shift_create", actor_id=client.user.pk).exists()


@pytest.mark.django_db
def test_htmx_add_returns_only_the_rotation_block(client_as, make_user, django_assert_max_num_queries):
    client = client_as(Role.MANAGER)
    rotation = Rotation.objects.create(name="Primary SRE")
    sre = make_user(Role.SRE, username="sam")
    # The user's timezone is UTC; the form reads times in it.
    start = timezone.now().astimezone(datetime.UTC) + datetime.timedelta(hours=1)

    with django_assert_max_num_queries(22):  # auth, lock, audit chain, re-render
        response = client.post(
            reverse("oncall:shift_add", args=[rotation.pk]),
            {
                "user": sre.pk,
                "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
                "ends_at": (start + datetime.timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M"),
            },
            headers={"HX-Request": "true"},
        )

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith(f'<section class="card stack rotation" id="rotation-{rotation.pk}"')
    assert "<html" not in html and "Added sam&#x27;s shift from " in html and "(4 h)" in html
    assert html.count('data-testid="shift"') == 1


@pytest.mark.django_db
@pytest.mark.parametrize("htmx", [True, False])
def test_overlapping_shift_shows_the_error_and_changes_nothing(client_as, make_user, htmx):
    client = client_as(Role.ADMIN)
    rotation = Rotation.objects.create(name="Primary SRE")
    sre = make_user(Role.SRE, username="sam")
    existing = shift(rotation, sre, 0, 12)
    start = existing.starts_at.astimezone(datetime.UTC) + datetime.timedelta(hours=2)

    response = client.post(
        reverse("oncall:shift_add", args=[rotation.pk]),
        {
            "user": sre.pk,
            "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
            "ends_at": (start + datetime.timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M"),
        },
        headers={"HX-Request": "true"} if htmx else {},
    )

    assert response.status_code == 200
    assert "overlaps sam&#x27;s shift" in response.content.decode()
    assert Shift.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "data, message",
    [
        (
            {"starts_at": "2030-01-01T10:00", "ends_at": "2030-01-01T09:00"},
            "must end after it starts",
        ),
        ({"starts_at": "yesterday", "ends_at": "2030-01-01T09:00"}, "Enter a valid date/time"),
        (
            {"starts_at": "2030-01-01T08:00", "ends_at": "2030-01-01T09:00", "user": "999999"},
            "Select a valid choice",
        ),
    ],
)
def test_bad_input_is_a_form_error(client_as, make_user, data, message):
    client = client_as(Role.MANAGER)
    rotation = Rotation.objects.create(name="Primary SRE")
    data = {"user": make_user(Role.SRE).pk} | data

    response = client.post(reverse("oncall:shift_add", args=[rotation.pk]), data)

    assert response.status_code == 200 and message in response.content.decode()
    assert not Shift.objects.exists()


@pytest.mark.django_db
def test_manager_removes_a_shift_with_htmx(client_as, make_user):
    client = client_as(Role.MANAGER)
    rotation = Rotation.objects.create(name="Primary SRE")
    gone = shift(rotation, make_user(Role.SRE), 0, 12)
    kept = shift(rotation, make_user(Role.SRE), 12, 24)

    response = client.post(reverse("oncall:shift_delete", args=[gone.pk]), headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert list(Shift.objects.all()) == [kept]
    assert response.content.decode().count('data-testid="shift"') == 1


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.SRE, Role.INCIDENT_COMMANDER, Role.VIEWER])
def test_non_managers_cannot_edit_shifts(client_as, make_user, role):
    client = client_as(role)
    rotation = Rotation.objects.create(name="Primary SRE")
    existing = shift(rotation, make_user(Role.SRE), 0, 12)

    add = client.post(
        reverse("oncall:shift_add", args=[rotation.pk]),
        {"user": client.user.pk, "starts_at": "2030-01-01T08:00", "ends_at": "2030-01-01T09:00"},
    )
    delete = client.post(reverse("oncall:shift_delete", args=[existing.pk]))

    assert add.status_code == delete.status_code == 403
    assert list(Shift.objects.all()) == [existing]


@pytest.mark.django_db
def test_dashboard_panel_shows_who_is_on_call(client_as, make_user, django_assert_max_num_queries):
    client = client_as(Role.VIEWER)
    rotation = Rotation.objects.create(name="Primary SRE")
    shift(rotation, make_user(Role.SRE, first_name="Sam", last_name="Reyes"), -1, 1)
    Rotation.objects.create(name="Database")

    html = client.get(reverse("dashboard")).content.decode()

    assert 'data-testid="on-call-panel"' in html
    assert "Sam Reyes" in html and "nobody" in html


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
    counts = (Rotation.objects.count(), Shift.objects.count())
    call_command("seed_demo", stdout=StringIO())

    assert counts == (2, 24) == (Rotation.objects.count(), Shift.objects.count())
    database = Rotation.objects.get(name="Database")
    assert [s.slug for s in database.services.all()] == ["postgresql"]
    now = timezone.now()
    primary_now = Shift.objects.get(rotation__name="Primary SRE", starts_at__lte=now, ends_at__gt=now)
    assert primary_now.user.username in {"sre", "commander"}
    assert set(Shift.objects.filter(rotation=database).values_list("user__username", flat=True)) == {"manager"}


@pytest.mark.django_db
def test_admin_refuses_an_overlapping_shift_and_audits_a_good_one(admin_client, make_user):
    rotation = Rotation.objects.create(name="Primary SRE")
    sre = make_user(Role.SRE)
    existing = shift(rotation, sre, 0, 12)
    url = reverse("admin:oncall_shift_add")

    def post(start, end):
        fmt = lambda d: {"0": d.strftime("%Y-%m-%d"), "1": d.strftime("%H:%M:%S")}  # noqa: E731
        s, e = fmt(start.astimezone(datetime.UTC)), fmt(end.astimezone(datetime.UTC))
        return admin_client.post(
            url,
            {
                "rotation": rotation.pk,
                "user": sre.pk,
                "starts_at_0": s["0"],
                "starts_at_1": s["1"],
                "ends_at_0": e["0"],
                "ends_at_1": e["1"],
            },
        )

    refused = post(existing.starts_at + datetime.timedelta(hours=1), existing.ends_at)
    assert refused.status_code == 200 and "overlaps another shift" in refused.content.decode()
    assert Shift.objects.count() == 1

    later = existing.ends_at + datetime.timedelta(minutes=1)  # the form drops microseconds
    ok = post(later, later + datetime.timedelta(hours=12))
    assert ok.status_code == 302, ok.context["adminform"].form.errors if ok.context else ok
    assert Shift.objects.count() == 2
    assert AuditEntry.objects.filter(action="oncall.shift.admin_add").exists()


@pytest.mark.django_db
def test_admin_rotation_pages_load(admin_client):
    rotation = Rotation.objects.create(name="Primary SRE")
    assert admin_client.get(reverse("admin:oncall_rotation_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:oncall_rotation_change", args=[rotation.pk])).status_code == 200
    assert admin_client.get(reverse("admin:oncall_shift_changelist")).status_code == 200
