import datetime

import pytest
from django.utils import timezone

from oncall.models import Rotation
from oncall.selectors import (
    on_call_now,
    rotations_overview,
    uncovered_rotation_count,
    upcoming_shifts,
)
from opsconsole.models import Service
from opsconsole.roles import Role
from tests.oncall.factories import shift

# The suite-wide SEV-table fixture needs database access before fixtures that ask for `db`.
pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(db, make_user):
    postgres = Service.objects.create(name="PostgreSQL", slug="postgresql")
    redis = Service.objects.create(name="Redis", slug="redis")
    primary = Rotation.objects.create(name="Primary SRE")  # no services: all of them
    database = Rotation.objects.create(name="Database")
    database.services.add(postgres)
    users = {
        "sre": make_user(Role.SRE, username="sre"),
        "commander": make_user(Role.INCIDENT_COMMANDER, username="commander"),
        "manager": make_user(Role.MANAGER, username="manager"),
    }
    shift(primary, users["sre"], -1, 11)
    shift(primary, users["commander"], 11, 23)
    shift(database, users["manager"], -2, 22)
    return {"postgres": postgres, "redis": redis, "primary": primary, "database": database, **users}


def test_on_call_now_for_a_service_includes_all_services_rotations(setup):
    assert [u.username for u in on_call_now(setup["postgres"])] == ["manager", "sre"]
    assert [u.username for u in on_call_now(setup["redis"])] == ["sre"]


def test_on_call_now_without_service_is_everyone_on_shift(setup):
    assert [u.username for u in on_call_now()] == ["manager", "sre"]


def test_on_call_at_a_later_time(setup):
    later = timezone.now() + datetime.timedelta(hours=12)
    assert [u.username for u in on_call_now(setup["redis"], at=later)] == ["commander"]
    assert [u.username for u in on_call_now(at=later + datetime.timedelta(days=2))] == []


def test_on_call_now_is_distinct_and_skips_inactive_users(setup):
    other = Rotation.objects.create(name="Shadow")
    shift(other, setup["sre"], -1, 1)  # sre holds two rotations at once
    assert [u.username for u in on_call_now()] == ["manager", "sre"]
    setup["manager"].is_active = False
    setup["manager"].save()
    assert [u.username for u in on_call_now(setup["postgres"])] == ["sre"]


def test_on_call_now_is_one_query(setup, django_assert_num_queries):
    with django_assert_num_queries(1):
        on_call_now(setup["postgres"])


def test_upcoming_shifts_and_overview(setup):
    assert [s.user.username for s in upcoming_shifts(setup["primary"], 5)] == ["sre", "commander"]
    overview = {r.name: r for r in rotations_overview()}
    assert [s.user.username for s in overview["Primary SRE"].current_shifts] == ["sre"]
    assert [s.user.username for s in overview["Primary SRE"].next_shifts] == ["commander"]
    assert [s.name for s in overview["Database"].services.all()] == ["PostgreSQL"]


def test_uncovered_rotations(setup):
    assert uncovered_rotation_count() == 0
    Rotation.objects.create(name="Nobody")
    assert uncovered_rotation_count() == 1
    assert uncovered_rotation_count(at=timezone.now() + datetime.timedelta(hours=23)) == 3
