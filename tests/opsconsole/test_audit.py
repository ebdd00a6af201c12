import contextlib
import datetime
import hashlib
import logging
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from opsconsole import audit, audit_verify
from opsconsole.models import AuditEntry, AuditHead, Service
from opsconsole.roles import Role


@contextlib.contextmanager
def triggers_off():
    """Tamper as someone with the database owner's rights would: row triggers
    (the append-only guard) do not fire for a session in replica mode."""
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
    try:
        with connection.cursor() as cursor:
            yield cursor
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = DEFAULT")


@pytest.fixture
def chain(make_user):
    user = make_user(Role.SRE)
    service = Service.objects.create(name="API", slug="api")
    for n in range(5):
        audit.record(user, "service.touch", service, before={"n": n}, after={"n": n + 1, "note": "ünïcode"})
    return list(AuditEntry.objects.order_by("seq"))


def test_rows_are_chained(chain):
    # One transaction appends to one stream: the stream its connection locked first.
    assert len({e.stream for e in chain}) == 1
    assert [e.position for e in chain] == [1, 2, 3, 4, 5]
    assert chain[0].prev_hash == audit.GENESIS_HASH
    for previous, entry in zip(chain, chain[1:], strict=False):
        assert entry.prev_hash == previous.hash
    assert list(audit_verify.verify_chain()) == []
    call_command("verify_audit")


def test_record_keeps_actor_target_and_request_id(chain):
    entry = chain[0]
    assert entry.actor_label.startswith("sre")
    assert entry.target_type == "opsconsole.service"
    assert entry.target_repr == "API"
    assert entry.before == {"n": 0}


def test_edit_in_sql_is_caught(chain):
    with triggers_off() as cursor:
        cursor.execute("UPDATE opsconsole_auditentry SET after = %s WHERE seq = %s", ['{"n": 99}', chain[2].seq])
    with pytest.raises(CommandError, match=rf"stream {chain[0].stream}: row 3 \(#{chain[2].seq}\) was edited"):
        call_command("verify_audit")


def test_deleted_row_is_caught(chain):
    with triggers_off() as cursor:
        cursor.execute("DELETE FROM opsconsole_auditentry WHERE seq = %s", [chain[1].seq])
    with pytest.raises(CommandError, match="rows 2..2 are missing"):
        call_command("verify_audit")


def test_inserted_row_is_caught(chain):
    # A forged row re-using a real hash as its prev_hash, pushed into the middle.
    stream = chain[0].stream
    with triggers_off() as cursor:
        # Two steps: the unique (stream, position) is checked row by row.
        cursor.execute(
            "UPDATE opsconsole_auditentry SET position = -position WHERE stream = %s AND position >= 4", [stream]
        )
        cursor.execute(
            "UPDATE opsconsole_auditentry SET position = -position + 1 WHERE stream = %s AND position < 0", [stream]
        )
    forged = AuditEntry(
        stream=stream, position=4, created_at=chain[2].created_at, action="forged", prev_hash=chain[2].hash
    )
    forged.hash = audit.compute_hash(forged)
    forged.save(force_insert=True)
    problems = list(audit_verify.verify_chain())
    assert problems and (problems[0].stream, problems[0].position) == (stream, 5)


@pytest.mark.django_db(transaction=True)
def test_verify_audit_command_exits_non_zero(make_user, tmp_path):
    """manage.py verify_audit, run as operators run it, against the test database."""
    import os
    import subprocess
    import sys

    from django.conf import settings

    user = make_user(Role.SRE)
    for n in range(3):
        audit.record(user, "cli.test", after={"n": n})
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
    }
    command = [sys.executable, "manage.py", "verify_audit"]
    ok = subprocess.run(command, env=env, capture_output=True, text=True, cwd=settings.BASE_DIR)
    assert ok.returncode == 0, ok.stderr
    assert "3 rows verified" in ok.stdout
    second = AuditEntry.objects.order_by("seq")[1]
    with triggers_off() as cursor:
        cursor.execute("UPDATE opsconsole_auditentry SET actor_label = 'mallory' WHERE seq = %s", [second.seq])
    broken = subprocess.run(command, env=env, capture_output=True, text=True, cwd=settings.BASE_DIR)
    assert broken.returncode == 1
    assert f"row {second.position} (#{second.seq}) was edited" in broken.stderr


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_keep_one_linear_chain(make_user):
    user = make_user(Role.SRE)
    errors = []

    def append(n: int) -> None:
        try:
            for i in range(10):
                audit.record(user, "concurrency.test", after={"thread": n, "i": i})
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=append, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert AuditEntry.objects.count() == 40
    assert list(audit_verify.verify_chain()) == []


def test_sql_update_and_delete_of_audit_rows_are_refused(chain):
    for sql in [
        f"UPDATE opsconsole_auditentry SET action = 'x' WHERE seq = {chain[1].seq}",
        "DELETE FROM opsconsole_auditentry",
    ]:
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql)
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEntry.objects.filter(seq=chain[4].seq).delete()
    assert AuditEntry.objects.count() == 5
    assert list(audit_verify.verify_chain()) == []


def test_the_head_record_only_moves_forward(chain):
    heads = AuditHead.objects.filter(pk=chain[0].stream)
    assert heads.get().position == 5
    with pytest.raises(DatabaseError, match="only moves forward"), transaction.atomic():
        heads.update(position=3, hash=chain[2].hash)
    with pytest.raises(DatabaseError, match="only moves forward"), transaction.atomic():
        AuditHead.objects.all().delete()
    with pytest.raises(DatabaseError, match="only moves forward"), transaction.atomic():
        heads.update(id=99)
    assert heads.get().hash == chain[4].hash


def test_deleting_the_newest_rows_is_caught(chain):
    with triggers_off() as cursor:
        cursor.execute("DELETE FROM opsconsole_auditentry WHERE seq >= %s", [chain[3].seq])
    with pytest.raises(CommandError, match="rows 4..5 are missing from the end of the log"):
        call_command("verify_audit")


def test_rows_appended_beyond_the_head_are_caught(chain):
    forged = AuditEntry(
        stream=chain[0].stream, position=6, created_at=chain[4].created_at, action="forged", prev_hash=chain[4].hash
    )
    forged.hash = audit.compute_hash(forged)
    forged.save(force_insert=True)
    problems = list(audit_verify.verify_chain())
    assert [p.position for p in problems] == [6] and "beyond the chain's head" in problems[0].message


def test_truncation_with_the_head_rewritten_is_caught_by_the_recorded_head(chain):
    stream = chain[0].stream
    recorded = f"{stream}:{chain[4].position}:{chain[4].hash}"
    call_command("verify_audit", expect_head=[recorded])
    with triggers_off() as cursor:
        cursor.execute("DELETE FROM opsconsole_auditentry WHERE seq >= %s", [chain[3].seq])
        cursor.execute("UPDATE opsconsole_audithead SET position = 3, hash = %s WHERE id = %s", [chain[2].hash, stream])
    assert list(audit_verify.verify_chain()) == []  # the database alone no longer knows
    with pytest.raises(CommandError, match="does not hold the recorded head"):
        call_command("verify_audit", expect_head=[recorded])


def test_the_head_is_exported_on_metrics_and_logged_daily(chain, client, caplog):
    body = client.get("/metrics").content.decode()
    stream = chain[0].stream
    assert f'audit_chain_head_seq{{stream="{stream}"}} 5.0' in body
    assert f'audit_chain_head_info{{hash="{chain[4].hash}",stream="{stream}"}} 1.0' in body
    from opsconsole.tasks import verify_audit_chain

    with caplog.at_level(logging.INFO, logger="opsconsole.tasks"):
        result = verify_audit_chain.delay().get()
    recorded = f"{stream}:5:{chain[4].hash}"
    assert result["intact"] and recorded in result["heads"]
    assert any(recorded in getattr(r, "audit_heads", []) for r in caplog.records)
    call_command("verify_audit", expect_head=[recorded])


def test_a_missing_head_is_started_again_from_the_last_row(chain):
    with triggers_off() as cursor:
        cursor.execute("DELETE FROM opsconsole_audithead")
    stream = chain[0].stream
    assert (
        list(audit_verify.verify_chain())[0].message == f"stream {stream}: the chain's head record is missing (deleted)"
    )
    entry = audit.record(None, "after.truncate")
    assert AuditHead.objects.count() == audit.stream_count()
    assert (entry.stream, entry.position) == (stream, 6)  # the transaction's own stream, continued
    assert list(audit_verify.verify_chain()) == []


@pytest.mark.django_db(transaction=True)
def test_a_writer_holding_a_stream_does_not_block_another(make_user):
    """The point of several streams: a transaction that appended and has not
    committed yet (its head stays locked until commit) does not make the next
    writer wait; both chains verify."""
    user = make_user(Role.SRE)
    appended, release, seen = threading.Event(), threading.Event(), {}

    def slow_writer() -> None:
        try:
            with transaction.atomic():
                seen["held"] = audit.record(user, "slow.writer").stream
                appended.set()
                release.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=slow_writer)
    thread.start()
    try:
        assert appended.wait(10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")  # waiting on the held head would fail here
        for n in range(3):
            entry = audit.record(user, "fast.writer", after={"n": n})
            assert entry.stream != seen["held"]
    finally:
        release.set()
        thread.join()
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
    assert AuditEntry.objects.count() == 4
    assert list(audit_verify.verify_chain()) == []


def test_stream_one_hashes_as_the_single_chain_did(chain):
    """Rows written before the streams existed are stream 1 and keep their
    hash: the payload of stream 1 has no `stream` key."""
    entry = AuditEntry(**{f.attname: getattr(chain[0], f.attname) for f in AuditEntry._meta.fields})
    entry.stream = 1
    other = AuditEntry(**{f.attname: getattr(chain[0], f.attname) for f in AuditEntry._meta.fields})
    other.stream = 2
    assert audit.compute_hash(entry) != audit.compute_hash(other)
    import hashlib
    import json

    legacy = {
        "seq": entry.position,
        "created_at": entry.created_at.astimezone(datetime.UTC).isoformat(),
        "actor_id": entry.actor_id,
        "actor_label": entry.actor_label,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "target_repr": entry.target_repr,
        "before": entry.before,
        "after": entry.after,
        "request_id": entry.request_id,
        "prev_hash": entry.prev_hash,
    }
    canonical = json.dumps(legacy, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert audit.compute_hash(entry) == hashlib.sha256(canonical.encode()).hexdigest()


def test_a_batch_writes_its_rows_together_and_drops_rolled_back_ones(make_user):
    user = make_user(Role.SRE)
    with transaction.atomic(), audit.batch():
        first = audit.record(user, "batch.one")
        try:
            with transaction.atomic():
                audit.record(user, "batch.rolled_back")
                raise RuntimeError("the savepoint rolls back, and its audit row with it")
        except RuntimeError:
            pass
        audit.record(user, "batch.two")
        # Nothing written yet: the rows go in together when the block ends.
        assert first.seq is None and not AuditEntry.objects.filter(action__startswith="batch.").exists()
    rows = list(AuditEntry.objects.filter(action__startswith="batch.").order_by("position"))
    assert [row.action for row in rows] == ["batch.one", "batch.two"]
    assert rows[0].stream == rows[1].stream and rows[1].position == rows[0].position + 1
    assert rows[1].prev_hash == rows[0].hash
    assert first.seq == rows[0].seq
    assert list(audit_verify.verify_chain()) == []


def test_a_failing_batch_writes_nothing(make_user):
    user = make_user(Role.SRE)
    with pytest.raises(ValueError), transaction.atomic(), audit.batch():
        audit.record(user, "batch.doomed")
        raise ValueError("the unit of work fails")
    assert not AuditEntry.objects.filter(action="batch.doomed").exists()
    assert list(audit_verify.verify_chain()) == []


AWKWARD = {
    "text": 'quotes " and \\ backslashes, </script>, ünïcode, emoji 🚨, tab\tand newline\n',
    "nested": {"b": [1, 2.5, None, True], "a": {"z": -0.1, "y": 10**20}},
    "empty": "",
}


def test_the_database_hashes_what_compute_hash_hashes_on_every_stream(make_user):
    """The append function (migration 0009) joins the canonical text around
    the head's values and hashes it in SQL: it must equal compute_hash's, on
    stream 1 (hashed without its number) and on the others."""
    user = make_user(Role.SRE)
    service = Service.objects.create(name='Ünïcode "svc"', slug="svc")
    audit.ensure_heads()  # a new database has stream 1's head only, until writers contend
    entries = []
    for stream in (1, 3, 1, 3):
        connection._audit_stream = stream  # the stream this transaction prefers (and keeps locked)
        entries.append(audit.record(user, "hash.check", service, before=None, after=AWKWARD))
        entries.append(audit.record(None, "hash.check.system", after={"n": stream}))
    assert {entry.stream for entry in entries} == {1, 3}
    stored = list(AuditEntry.objects.order_by("seq"))
    assert [e.hash for e in stored] == [e.hash for e in entries]
    for entry in stored:
        assert audit.compute_hash(entry) == entry.hash
    assert stored[0].after == AWKWARD and stored[0].before is None
    assert list(audit_verify.verify_chain()) == []


def test_hash_parts_join_to_the_canonical_text():
    entry = AuditEntry(
        stream=4,
        position=17,
        created_at=datetime.datetime(2026, 12, 1, 3, 0, tzinfo=datetime.UTC),
        actor_label="système",
        action="parts.check",
        after=AWKWARD,
        prev_hash="a" * 64,
    )
    head, mid, tail = audit._hash_parts(entry)
    joined = head + entry.prev_hash + mid + "17" + ',"stream":4' + tail
    assert hashlib.sha256(joined.encode()).hexdigest() == audit.compute_hash(entry)
    entry.stream = 1  # stream 1 is hashed without its number
    joined = head + entry.prev_hash + mid + "17" + tail
    assert hashlib.sha256(joined.encode()).hexdigest() == audit.compute_hash(entry)


def test_an_append_is_one_statement(make_user):
    user = make_user(Role.SRE)
    audit.record(user, "warm.up")  # the stream's head exists from here on
    with CaptureQueriesContext(connection) as queries:
        entry = audit.record(user, "one.statement", after={"n": 1})
    assert len(queries.captured_queries) == 1
    assert AuditEntry.objects.get(seq=entry.seq).hash == entry.hash
    assert AuditHead.objects.get(pk=entry.stream).position == entry.position


@pytest.mark.django_db(transaction=True)
def test_with_every_stream_busy_an_append_waits_for_its_own(make_user, settings):
    """One stream, held by an uncommitted writer: the next append waits for
    it (here until the lock timeout) rather than skip it or fail at once."""
    settings.AUDIT_STREAMS = 1
    user = make_user(Role.SRE)
    audit.record(user, "first")
    appended, release = threading.Event(), threading.Event()

    def holder() -> None:
        try:
            with transaction.atomic():
                audit.record(user, "holder")
                appended.set()
                release.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert appended.wait(10)
        with pytest.raises(DatabaseError, match="lock timeout"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '300ms'")
            audit.record(user, "waiter")
    finally:
        release.set()
        thread.join()
    audit.record(user, "after")
    assert list(AuditEntry.objects.order_by("seq").values_list("action", flat=True)) == ["first", "holder", "after"]
    assert list(audit_verify.verify_chain()) == []
