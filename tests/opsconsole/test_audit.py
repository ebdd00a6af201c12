import contextlib
import logging
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, connections, transaction

from opsconsole import audit
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
    assert [e.seq for e in chain] == [1, 2, 3, 4, 5]
    assert chain[0].prev_hash == audit.GENESIS_HASH
    for previous, entry in zip(chain, chain[1:], strict=False):
        assert entry.prev_hash == previous.hash
    assert list(audit.verify_chain()) == []
    call_command("verify_audit")


def test_record_keeps_actor_target_and_request_id(chain):
    entry = chain[0]
    assert entry.actor_label.startswith("sre")
    assert entry.target_type == "opsconsole.service"
    assert entry.target_repr == "API"
    assert entry.before == {"n": 0}


def test_edit_in_sql_is_caught(chain):
    with triggers_off() as cursor:
        cursor.execute("UPDATE opsconsole_auditentry SET after = %s WHERE seq = 3", ['{"n": 99}'])
    with pytest.raises(CommandError, match="row 3 was edited"):
        call_command("verify_audit")


def test_deleted_row_is_caught(chain):
    with triggers_off() as cursor:
        cursor.execute("DELETE FROM opsconsole_auditentry WHERE seq = 2")
    with pytest.raises(CommandError, match="at row 3: rows 2..2 are missing"):
        call_command("verify_audit")


def test_inserted_row_is_caught(chain):
    # A forged row re-using a real hash as its prev_hash, pushed into the middle.
    with triggers_off() as cursor:
        # Two steps: the primary key is checked row by row.
        cursor.execute("UPDATE opsconsole_auditentry SET seq = -seq WHERE seq >= 4")
        cursor.execute("UPDATE opsconsole_auditentry SET seq = -seq + 1 WHERE seq < 0")
    forged = AuditEntry(seq=4, created_at=chain[2].created_at, action="forged", prev_hash=chain[2].hash, hash="f" * 64)
    forged.save(force_insert=True)
    problems = list(audit.verify_chain())
    assert problems and problems[0].seq == 4


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
    with triggers_off() as cursor:
        cursor.execute("UPDATE opsconsole_auditentry SET actor_label = 'mallory' WHERE seq = 2")
    broken = subprocess.run(command, env=env, capture_output=True, text=True, cwd=settings.BASE_DIR)
    assert broken.returncode == 1
    assert "row 2 was edited" in broken.stderr


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
    assert list(audit.verify_chain()) == []


def test_sql_update_and_delete_of_audit_rows_are_refused(chain):
    for sql in ["UPDATE opsconsole_auditentry SET action = 'x' WHERE seq = 2", "DELETE FROM opsconsole_auditentry"]:
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql)
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEntry.objects.filter(seq=5).delete()
    assert AuditEntry.objects.count() == 5
    assert list(audit.verify_chain()) == []


def test_the_head_record_only_moves_forward(chain):
    assert AuditHead.objects.get().seq == 5
    with pytest.raises(DatabaseError, match="only moves forward"), transaction.atomic():
        AuditHead.objects.update(seq=3, hash=chain[2].hash)
    with pytest.raises(DatabaseError, match="only moves forward"), transaction.atomic():
        AuditHead.objects.all().delete()
    assert AuditHead.objects.get().hash == chain[4].hash


def test_deleting_the_newest_rows_is_caught(chain):
    with triggers_off() as cursor:
        cursor.execute("DELETE FROM opsconsole_auditentry WHERE seq >= 4")
    with pytest.raises(CommandError, match="at row 4: rows 4..5 are missing from the end of the log"):
        call_command("verify_audit")


def test_rows_appended_beyond_the_head_are_caught(chain):
    forged = AuditEntry(seq=6, created_at=chain[4].created_at, action="forged", prev_hash=chain[4].hash)
    forged.hash = audit.compute_hash(forged)
    forged.save(force_insert=True)
    problems = list(audit.verify_chain())
    assert [p.seq for p in problems] == [6] and "beyond the chain's head" in problems[0].message


def test_truncation_with_the_head_rewritten_is_caught_by_the_recorded_head(chain):
    recorded = f"{chain[4].seq}:{chain[4].hash}"
    call_command("verify_audit", expect_head=recorded)
    with triggers_off() as cursor:
        cursor.execute("DELETE FROM opsconsole_auditentry WHERE seq >= 4")
        cursor.execute("UPDATE opsconsole_audithead SET seq = 3, hash = %s", [chain[2].hash])
    assert list(audit.verify_chain()) == []  # the database alone no longer knows
    with pytest.raises(CommandError, match="does not hold the recorded head"):
        call_command("verify_audit", expect_head=recorded)


def test_the_head_is_exported_on_metrics_and_logged_daily(chain, client, caplog):
    body = client.get("/metrics").content.decode()
    assert "audit_chain_head_seq 5.0" in body
    assert f'audit_chain_head_info{{hash="{chain[4].hash}"}} 1.0' in body
    from opsconsole.tasks import verify_audit_chain

    with caplog.at_level(logging.INFO, logger="opsconsole.tasks"):
        result = verify_audit_chain.delay().get()
    assert result["intact"] and result["head_seq"] == 5
    assert any(getattr(r, "audit_head_hash", None) == chain[4].hash for r in caplog.records)


def test_a_missing_head_is_started_again_from_the_last_row(chain):
    with triggers_off() as cursor:
        cursor.execute("DELETE FROM opsconsole_audithead")
    assert list(audit.verify_chain())[0].message == "the chain's head record is missing (deleted)"
    audit.record(None, "after.truncate")
    assert AuditHead.objects.get().seq == 6
    assert list(audit.verify_chain()) == []
