import datetime
import threading

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.db import connections
from django.utils import timezone

from checklists import services
from checklists.models import ChecklistRun, RunItem, Schedule, TemplateItem
from checklists.services.common import ItemResult
from healthchecks.models import Check
from notifications.models import Delivery
from oncall.models import Rotation, Shift
from opsconsole.models import AuditEntry
from opsconsole.roles import Role, has_capability

pytestmark = pytest.mark.django_db
UTC = datetime.UTC


def _at(hour, minute=0, day=23):
    return datetime.datetime(2026, 11, day, hour, minute, tzinfo=UTC)  # a Monday


# --- schedules and run creation ----------------------------------------------------


def test_schedule_slots_respect_days_and_timezone(make_template, make_schedule):
    schedule = make_schedule(make_template(), at=datetime.time(8, 0), days="01234", tz="Europe/Paris")
    # Monday 23 Nov to Monday 30 Nov: five weekday slots at 08:00 Paris = 07:00 UTC.
    slots = schedule.slots_between(_at(0), _at(23, day=29))
    assert slots == [_at(7, day=d) for d in (23, 24, 25, 26, 27)]


def test_create_due_runs_creates_each_slot_once(make_template, make_schedule):
    schedule = make_schedule(make_template(4))
    created = services.create_due_runs(_at(8, 1))
    assert [run.slot for run in created] == [_at(8)]
    assert created[0].due_at == _at(10)
    assert created[0].items.count() == 4
    assert services.create_due_runs(_at(8, 2)) == []
    assert ChecklistRun.objects.filter(schedule=schedule).count() == 1
    assert AuditEntry.objects.filter(action="checklists.run_create").count() == 1


def test_slots_older_than_due_window_are_not_created(make_template, make_schedule):
    make_schedule(make_template(), due=datetime.timedelta(hours=1))
    assert services.create_due_runs(_at(9, 30)) == []


def test_before_the_slot_nothing_is_created(make_template, make_schedule):
    make_schedule(make_template())
    assert services.create_due_runs(_at(7, 59)) == []


# serialized_rollback: the flush afterwards must not re-create content types
# (post_migrate) under the next serialized_rollback test of this worker.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_creation_of_one_slot_makes_one_run(make_template, make_schedule):
    """Eight threads, each with its own database connection, race to create
    the same slot: the unique constraint lets exactly one insert."""
    schedule = make_schedule(make_template(5))
    barrier = threading.Barrier(8)
    results, errors = [], []

    def create() -> None:
        try:
            barrier.wait()
            run, created = services.create_slot_run(
                Schedule.objects.select_related("template").get(pk=schedule.pk), _at(8), _at(8, 1)
            )
            results.append((run.pk, created))
        except Exception as exc:  # asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(1 for _, created in results if created) == 1
    assert len({pk for pk, _ in results}) == 1
    assert ChecklistRun.objects.count() == 1
    assert RunItem.objects.count() == 5


def test_runs_snapshot_items_so_template_edits_do_not_change_history(make_template, make_user):
    template = make_template(2)
    run = services.run_start(actor=make_user(Role.SRE), template=template)
    TemplateItem.objects.filter(template=template).update(text="Changed")
    TemplateItem.objects.create(template=template, text="New item", order=9)
    assert sorted(run.items.values_list("text", flat=True)) == ["Item 1", "Item 2"]


def test_manual_start_needs_the_tick_capability(make_template, make_user):
    with pytest.raises(PermissionDenied):
        services.run_start(actor=make_user(Role.VIEWER), template=make_template())
    assert ChecklistRun.objects.count() == 0


# --- automatic items -----------------------------------------------------------------


def test_item_bound_to_a_passing_check_is_ticked_at_creation(make_template, make_schedule, make_check):
    template = make_template(2)
    passing, failing = make_check(), make_check(Check.State.CRITICAL, name="DB")
    items = list(template.items.order_by("order"))
    items[0].health_check = passing
    items[1].health_check = failing
    TemplateItem.objects.bulk_update(items, ["health_check"])
    make_schedule(template)
    run = services.create_due_runs(_at(8, 1))[0]
    auto, manual = run.items.order_by("order")
    assert auto.state == RunItem.State.TICKED and auto.automatic and auto.ticked_by is None
    assert "API health" in auto.evidence and "200 OK" in auto.evidence
    assert manual.state == RunItem.State.OPEN


def test_refresh_ticks_open_items_once_their_check_passes(make_template, make_user, make_check):
    template = make_template(1)
    check = make_check(Check.State.CRITICAL)
    TemplateItem.objects.filter(template=template).update(health_check=check)
    run = services.run_start(actor=make_user(Role.SRE), template=template)
    assert services.refresh_automatic_items() == 0
    Check.objects.filter(pk=check.pk).update(state=Check.State.OK)
    assert services.refresh_automatic_items() == 1
    assert services.refresh_automatic_items() == 0
    item = run.items.get()
    assert item.state == RunItem.State.TICKED and item.automatic


# --- ticking ---------------------------------------------------------------------------


@pytest.fixture
def run(make_template, make_user):
    return services.run_start(actor=make_user(Role.SRE), template=make_template(3, optional=1))


def test_tick_records_who_and_when_and_is_audited(run, make_user):
    sre = make_user(Role.SRE)
    item = run.items.order_by("order").first()
    result = services.item_tick(actor=sre, run_id=run.pk, item_id=item.pk)
    assert result.changed
    item.refresh_from_db()
    assert item.state == RunItem.State.TICKED and item.ticked_by == sre and item.ticked_at is not None
    assert AuditEntry.objects.filter(action="checklists.item_tick", target_id=str(item.pk)).exists()


# Every kind of character JSON escapes, and non-ASCII ones it does not; as
# long as an item's text may be (300 characters, what an audit row keeps).
AWKWARD_TEXT = ('Check "quotes", \\ back\\slash, tab\t, newline\n, \x01\x1f\x7f, ünïcode, 🚨, \u2028 ' + "x" * 300)[
    :300
]


def test_a_tick_audit_row_is_hashed_as_compute_hash_hashes_it(run, make_user):
    """The tick's statement writes the item's text into the audit row's hash
    text with PostgreSQL's to_json: the chain must verify as if Python had
    written it, with the text cut where record() cuts it."""
    from opsconsole import audit, audit_verify

    item = run.items.order_by("order").first()
    RunItem.objects.filter(pk=item.pk).update(text=AWKWARD_TEXT)
    result = services.item_tick(actor=make_user(Role.SRE), run_id=run.pk, item_id=item.pk)
    assert result.changed
    entry = AuditEntry.objects.get(action="checklists.item_tick", target_id=str(item.pk))
    assert entry.target_repr == AWKWARD_TEXT[: audit.TARGET_REPR_LENGTH] and entry.target_type == "checklists.runitem"
    assert audit.compute_hash(entry) == entry.hash
    assert entry.after == {"run": run.pk, "ticked_at": audit._normalise(result.item.ticked_at)}
    assert list(audit_verify.verify_chain()) == []


def test_a_tick_with_no_audit_head_makes_the_heads_and_ticks(run, make_user):
    """A new or flushed database has no stream heads: the tick's statement
    writes nothing then, and the tick makes them and ticks."""
    from django.db import connection

    from opsconsole import audit, audit_verify
    from opsconsole.models import AuditHead

    item = run.items.order_by("order").first()
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {AuditHead._meta.db_table}")  # DELETE is refused; TRUNCATE is what a flush does
    result = services.item_tick(actor=make_user(Role.SRE), run_id=run.pk, item_id=item.pk)
    assert result.changed and result.item.state == RunItem.State.TICKED
    assert AuditEntry.objects.filter(action="checklists.item_tick", target_id=str(item.pk)).count() == 1
    assert AuditHead.objects.count() == audit.stream_count()
    assert list(audit_verify.verify_chain()) == []


def test_a_tick_ticks_when_another_request_made_the_missing_heads(run, make_user, monkeypatch):
    """Two first ticks on a flushed database: the one that finds the heads
    already made by the other (ensure_heads makes none) still ticks, it is
    no refusal (the load test saw "Already open." here)."""
    from django.db import connection

    from opsconsole import audit
    from opsconsole.models import AuditHead

    item = run.items.order_by("order").first()
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {AuditHead._meta.db_table}")
    made = audit.ensure_heads

    def made_by_someone_else(count=None):
        made(count)
        return False

    monkeypatch.setattr(audit, "ensure_heads", made_by_someone_else)
    result = services.item_tick(actor=make_user(Role.SRE), run_id=run.pk, item_id=item.pk)
    assert result.changed and result.message == ""
    assert AuditEntry.objects.filter(action="checklists.item_tick", target_id=str(item.pk)).count() == 1


def test_second_tick_does_not_undo_or_steal_the_first(run, make_user):
    first, second = make_user(Role.SRE), make_user(Role.SRE)
    item = run.items.first()
    services.item_tick(actor=first, run_id=run.pk, item_id=item.pk)
    result = services.item_tick(actor=second, run_id=run.pk, item_id=item.pk)
    assert not result.changed
    assert "Already ticked by" in result.message
    item.refresh_from_db()
    assert item.ticked_by == first


def test_tick_returns_what_a_fresh_read_shows_in_one_statement(make_template, make_user):
    """The tick's UPDATE brings the item back with its run, people and the
    run's progress and appends its audit row, in one statement (atomic by
    itself: no BEGIN or COMMIT around it either)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from checklists.services.items import _load_item

    sre, other = make_user(Role.SRE), make_user(Role.SRE)
    run = services.run_start(actor=other, template=make_template(5, optional=2))
    first, *rest = run.items.order_by("order")
    services.item_tick(actor=other, run_id=run.pk, item_id=rest[0].pk)
    services.item_mark_na(actor=other, run_id=run.pk, item_id=rest[1].pk, reason="Not today")
    assert has_capability(sre, "checklist.tick")  # the roles, loaded with the user on a request
    with CaptureQueriesContext(connection) as queries:
        result = services.item_tick(actor=sre, run_id=run.pk, item_id=first.pk)
    assert result.changed and result.message == ""
    # (The savepoint pair is the test's own transaction.)
    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert [sql.split(None, 1)[0] for sql in statements] == ["WITH"]
    assert "opsconsole_audit_append" in statements[0]
    fresh = _load_item(run.pk, first.pk)
    assert (
        result.progress
        == ItemResult(fresh, True).progress
        == {
            "total": 5,
            "done": 3,
            "required_open": 2,
        }
    )
    for field in ("state", "ticked_by_id", "ticked_at", "automatic", "required", "text", "version"):
        assert getattr(result.item, field) == getattr(fresh, field), field
    assert result.item.ticked_by.username == sre.username
    assert (result.item.run.status, result.item.run.title) == (fresh.run.status, fresh.run.title)


def test_a_refused_tick_shows_the_item_as_it_stands(run, make_user):
    first, second = make_user(Role.SRE), make_user(Role.SRE)
    item = run.items.first()
    services.item_tick(actor=first, run_id=run.pk, item_id=item.pk)
    result = services.item_tick(actor=second, run_id=run.pk, item_id=item.pk)
    assert not result.changed and result.item.ticked_by.username == first.username
    assert result.progress["done"] == 1
    with pytest.raises(RunItem.DoesNotExist):
        services.item_tick(actor=second, run_id=run.pk, item_id=item.pk + 10_000)


# serialized_rollback: the flush afterwards must not re-create content types
# (post_migrate) under the next serialized_rollback test of this worker.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_ticks_of_one_item_record_exactly_one(make_template, make_user):
    template = make_template(1)
    users = [make_user(Role.SRE) for _ in range(6)]
    run = services.run_start(actor=users[0], template=template)
    item = run.items.get()
    barrier = threading.Barrier(6)
    changed, errors = [], []

    def tick(user) -> None:
        try:
            barrier.wait()
            changed.append(services.item_tick(actor=user, run_id=run.pk, item_id=item.pk).changed)
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=tick, args=(u,)) for u in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and changed.count(True) == 1
    assert AuditEntry.objects.filter(action="checklists.item_tick").count() == 1


def test_na_needs_a_reason_and_changes_nothing_without_one(run, make_user):
    item = run.items.first()
    with pytest.raises(services.ChecklistError):
        services.item_mark_na(actor=make_user(Role.SRE), run_id=run.pk, item_id=item.pk, reason="  ")
    item.refresh_from_db()
    assert item.state == RunItem.State.OPEN


def test_reopen_clears_tick_and_na(run, make_user):
    sre = make_user(Role.SRE)
    item = run.items.first()
    services.item_mark_na(actor=sre, run_id=run.pk, item_id=item.pk, reason="No backups on Sunday")
    result = services.item_reopen(actor=sre, run_id=run.pk, item_id=item.pk)
    assert result.changed and result.item.state == RunItem.State.OPEN and result.item.na_reason == ""


def test_note_conflict_keeps_both_texts(run, make_user):
    alice, bob = make_user(Role.SRE, first_name="Alice"), make_user(Role.SRE, first_name="Bob")
    item = run.items.first()
    services.item_save_note(actor=alice, run_id=run.pk, item_id=item.pk, note="Alice's", evidence="", version=1)
    with pytest.raises(services.NoteConflict) as conflict:
        services.item_save_note(actor=bob, run_id=run.pk, item_id=item.pk, note="Bob's", evidence="link", version=1)
    assert conflict.value.current.note == "Alice's"
    assert conflict.value.mine_note == "Bob's" and conflict.value.mine_evidence == "link"
    assert "Alice" in str(conflict.value)
    # Bob merges and saves against the version he has now seen.
    services.item_save_note(
        actor=bob,
        run_id=run.pk,
        item_id=item.pk,
        note="Alice's + Bob's",
        evidence="link",
        version=conflict.value.current.version,
    )
    item.refresh_from_db()
    assert item.note == "Alice's + Bob's" and item.version == 3


def test_sign_off_refused_until_required_items_done(run, make_user):
    sre = make_user(Role.SRE)
    with pytest.raises(services.ChecklistError, match="2 required item"):
        services.run_sign_off(actor=sre, run=run)
    run.refresh_from_db()
    assert run.status == ChecklistRun.Status.OPEN
    required = run.items.filter(required=True).order_by("order")
    services.item_tick(actor=sre, run_id=run.pk, item_id=required[0].pk)
    services.item_mark_na(actor=sre, run_id=run.pk, item_id=required[1].pk, reason="Not today")
    signed = services.run_sign_off(actor=sre, run=run)  # the optional item may stay open
    assert signed.status == ChecklistRun.Status.COMPLETED and signed.signed_off_by == sre
    with pytest.raises(services.ChecklistError, match="Already signed off"):
        services.run_sign_off(actor=sre, run=run)


def test_completed_run_refuses_changes(run, make_user):
    sre = make_user(Role.SRE)
    for item in run.items.filter(required=True):
        services.item_tick(actor=sre, run_id=run.pk, item_id=item.pk)
    services.run_sign_off(actor=sre, run=run)
    optional = run.items.get(required=False)
    result = services.item_tick(actor=sre, run_id=run.pk, item_id=optional.pk)
    assert not result.changed and "signed off" in result.message
    ticked = run.items.filter(required=True).first()
    assert not services.item_reopen(actor=sre, run_id=run.pk, item_id=ticked.pk).changed


def test_viewer_cannot_tick(run, make_user):
    item = run.items.first()
    with pytest.raises(PermissionDenied):
        services.item_tick(actor=make_user(Role.VIEWER), run_id=run.pk, item_id=item.pk)
    item.refresh_from_db()
    assert item.state == RunItem.State.OPEN


# --- missed runs ----------------------------------------------------------------------


def test_overdue_runs_are_marked_missed_once_and_page_whoever_is_on_call(
    run, make_user, settings, django_capture_on_commit_callbacks
):
    """The real path: notify_on_call asks the oncall app's registered resolver
    and mails the SRE on shift (not the viewer off shift), once."""
    settings.NOTIFY_WEBHOOK_URL = ""
    sre = make_user(Role.SRE, email="oncall@example.com")
    make_user(Role.VIEWER, email="viewer@example.com")
    rotation = Rotation.objects.create(name="Primary")
    now = timezone.now()
    Shift.objects.create(
        rotation=rotation,
        user=sre,
        starts_at=now - datetime.timedelta(hours=1),
        ends_at=now + datetime.timedelta(hours=1),
    )
    later = run.due_at + datetime.timedelta(minutes=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.mark_missed_runs(later) == [run.pk]
    with django_capture_on_commit_callbacks(execute=True):
        assert services.mark_missed_runs(later) == []
    run.refresh_from_db()
    assert run.status == ChecklistRun.Status.MISSED
    (delivery,) = Delivery.objects.filter(event="checklist.missed")
    assert delivery.channel == Delivery.Channel.EMAIL and delivery.status == Delivery.Status.SENT
    assert [m.to for m in mail.outbox] == [["oncall@example.com"]]
    assert run.title in mail.outbox[0].subject
    assert f"/checklists/runs/{run.pk}/" in mail.outbox[0].body
    assert AuditEntry.objects.filter(action="checklists.run_missed").count() == 1


def test_run_before_due_is_not_missed(run):
    assert services.mark_missed_runs(run.due_at - datetime.timedelta(seconds=1)) == []


def test_missed_run_can_still_be_completed_late(run, make_user):
    sre = make_user(Role.SRE)
    services.mark_missed_runs(run.due_at + datetime.timedelta(minutes=1))
    for item in run.items.all():
        services.item_tick(actor=sre, run_id=run.pk, item_id=item.pk)
    run.refresh_from_db()
    run.due_at = timezone.now() - datetime.timedelta(minutes=1)
    run.save()
    assert services.run_sign_off(actor=sre, run=run).completed_late
