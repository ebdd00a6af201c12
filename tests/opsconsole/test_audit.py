import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections

from opsconsole import audit
from opsconsole.models import AuditEntry, Service
from opsconsole.roles import Role


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
    with connection.cursor() as cursor:
        cursor.execute("UPDATE opsconsole_auditentry SET after = %s WHERE seq = 3", ['{"n": 99}'])
    with pytest.raises(CommandError, match="row 3 was edited"):
        call_command("verify_audit")


def test_deleted_row_is_caught(chain):
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM opsconsole_auditentry WHERE seq = 2")
    with pytest.raises(CommandError, match="at row 3: rows 2..2 are missing"):
        call_command("verify_audit")


def test_inserted_row_is_caught(chain):
    # A forged row re-using a real hash as its prev_hash, pushed into the middle.
    with connection.cursor() as cursor:
        # Two steps: the primary key is checked row by row.
        cursor.execute("UPDATE opsconsole_auditentry SET seq = -seq WHERE seq >= 4")
        cursor.execute("UPDATE opsconsole_auditentry SET seq = -seq + 1 WHERE seq < 0")
    forged = AuditEntry(
        seq=4, created_at=chain[2].created_at, action="forged", prev_hash=chain[2].hash, hash="f" * 64
    )
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
    with connection.cursor() as cursor:
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
