import datetime
import threading

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from oncall import services
from oncall.models import Rotation, Shift
from opsconsole.models import AuditEntry
from opsconsole.roles import Role

H = datetime.timedelta(hours=1)


@pytest.fixture
def rotation(db):
    return Rotation.objects.create(name="Primary SRE", timezone="Europe/London")


def test_shift_create_is_audited(rotation, make_user):
    manager, sre = make_user(Role.MANAGER), make_user(Role.SRE)
    start = timezone.now()

    shift = services.shift_create(actor=manager, rotation=rotation, user=sre, starts_at=start, ends_at=start + 12 * H)

    entry = AuditEntry.objects.get(action="oncall.shift_create")
    assert entry.actor_id == manager.pk and entry.target_id == str(shift.pk)
    assert entry.after["user_id"] == sre.pk


def test_overlapping_shift_is_refused_with_a_clear_message(rotation, make_user):
    manager, sre, ic = (
        make_user(Role.MANAGER),
        make_user(Role.SRE, first_name="Sam"),
        make_user(Role.SRE),
    )
    start = timezone.now().replace(minute=0, second=0, microsecond=0)
    services.shift_create(actor=manager, rotation=rotation, user=sre, starts_at=start, ends_at=start + 12 * H)

    with pytest.raises(ValidationError) as refused:
        services.shift_create(
            actor=manager,
            rotation=rotation,
            user=ic,
            starts_at=start + 11 * H,
            ends_at=start + 20 * H,
        )

    message = refused.value.messages[0]
    assert "overlaps Sam's shift" in message and "Primary SRE" in message and "Europe/London" in message
    assert Shift.objects.count() == 1
    assert AuditEntry.objects.filter(action="oncall.shift_create").count() == 1


def test_back_to_back_shifts_and_other_rotations_are_fine(rotation, make_user):
    manager, sre = make_user(Role.MANAGER), make_user(Role.SRE)
    other = Rotation.objects.create(name="Database")
    start = timezone.now()
    services.shift_create(actor=manager, rotation=rotation, user=sre, starts_at=start, ends_at=start + 12 * H)

    services.shift_create(actor=manager, rotation=rotation, user=sre, starts_at=start + 12 * H, ends_at=start + 24 * H)
    services.shift_create(actor=manager, rotation=other, user=sre, starts_at=start, ends_at=start + 12 * H)

    assert Shift.objects.count() == 3


def test_shift_must_end_after_it_starts(rotation, make_user):
    manager, sre = make_user(Role.MANAGER), make_user(Role.SRE)
    start = timezone.now()
    with pytest.raises(ValidationError):
        services.shift_create(actor=manager, rotation=rotation, user=sre, starts_at=start, ends_at=start)
    # The database refuses it too, whoever writes.
    with pytest.raises(IntegrityError), transaction.atomic():
        Shift.objects.create(rotation=rotation, user=sre, starts_at=start, ends_at=start - H)


def test_only_schedule_editors_change_shifts(rotation, make_user):
    sre = make_user(Role.SRE)
    start = timezone.now()
    with pytest.raises(PermissionDenied):
        services.shift_create(actor=sre, rotation=rotation, user=sre, starts_at=start, ends_at=start + H)
    shift = Shift.objects.create(rotation=rotation, user=sre, starts_at=start, ends_at=start + H)
    with pytest.raises(PermissionDenied):
        services.shift_delete(actor=sre, shift=shift)
    assert Shift.objects.filter(pk=shift.pk).exists()


def test_shift_delete_is_audited_and_idempotent(rotation, make_user):
    manager, sre = make_user(Role.MANAGER), make_user(Role.SRE)
    start = timezone.now()
    shift = Shift.objects.create(rotation=rotation, user=sre, starts_at=start, ends_at=start + H)

    services.shift_delete(actor=manager, shift=shift)
    services.shift_delete(actor=manager, shift=shift)

    assert not Shift.objects.exists()
    assert AuditEntry.objects.filter(action="oncall.shift_delete").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_managers_adding_overlapping_shifts_at_once_cannot_both_win(make_user):
    """The rotation row lock serialises the check-then-insert: without it both
    threads would see no clash and insert."""
    rotation = Rotation.objects.create(name="Race")
    manager, a, b = make_user(Role.MANAGER), make_user(Role.SRE), make_user(Role.SRE)
    start = timezone.now()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def add(user, offset):
        try:
            barrier.wait()
            services.shift_create(
                actor=manager,
                rotation=rotation,
                user=user,
                starts_at=start + offset,
                ends_at=start + offset + 8 * H,
            )
            outcomes.append("created")
        except ValidationError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [
        threading.Thread(target=add, args=(a, 0 * H)),
        threading.Thread(target=add, args=(b, 4 * H)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["created", "refused"]
    assert Shift.objects.filter(rotation=rotation).count() == 1
