"""backup_database / restore_database with the real pg_dump and pg_restore
against the test PostgreSQL: a restore into an empty database that
verify_audit accepts, and the refusals (bad checksum, non-empty target)."""

import json
import os
import time
import uuid

import psycopg
import pytest
from django.core.management import CommandError, call_command

from opsconsole import audit
from opsconsole.backups import Target
from opsconsole.models import AuditEntry, Service
from tests import processes

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def scratch_database():
    """An empty database beside the test one, dropped afterwards."""
    base = Target.from_url(processes.subprocess_database_url())
    name = f"{base.name}_restore_{uuid.uuid4().hex[:8]}"
    admin = dict(host=base.host or None, port=base.port or None, user=base.user or None, password=base.password or None)
    admin = {k: v for k, v in admin.items() if v}
    with psycopg.connect(dbname="postgres", autocommit=True, **admin) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    target = Target(base.host, base.port, base.user, base.password, name)
    yield target
    with psycopg.connect(dbname="postgres", autocommit=True, **admin) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _rows(target: Target, sql: str):
    kwargs = {k: v for k, v in dict(host=target.host, port=target.port, user=target.user).items() if v}
    with psycopg.connect(dbname=target.name, password=target.password or None, **kwargs) as conn:
        return conn.execute(sql).fetchall()


def _some_history() -> None:
    for n in range(3):
        service = Service.objects.create(name=f"Backup service {n}", slug=f"backup-{n}")
        audit.record(None, "service.create", service, after={"name": service.name})


def test_backup_then_restore_into_an_empty_database_verifies(tmp_path, scratch_database, capsys):
    _some_history()
    call_command("backup_database", output_dir=str(tmp_path))
    out = capsys.readouterr().out
    [dump] = list(tmp_path.glob("opsconsole-*.dump"))
    assert f"Backup written: {dump}" in out
    assert (tmp_path / f"{dump.name}.sha256").read_text().endswith(f"  {dump.name}\n")
    assert dump.read_bytes()[:5] == b"PGDMP"  # pg_dump's custom (compressed) format
    rows_at_dump = AuditEntry.objects.count() - 1  # the backup's own audit row came after the dump
    assert AuditEntry.objects.order_by("-seq").first().action == "backup.create"

    call_command("restore_database", str(dump), database_url=scratch_database.url())
    out = capsys.readouterr().out
    assert "Checksum OK" in out
    assert f"Audit log intact: {rows_at_dump} rows verified" in out
    assert _rows(scratch_database, "SELECT count(*) FROM opsconsole_auditentry")[0][0] == rows_at_dump
    names = {row[0] for row in _rows(scratch_database, "SELECT name FROM opsconsole_service")}
    assert {"Backup service 0", "Backup service 2"} <= names
    with pytest.raises(CommandError, match="is not empty"):  # never over an existing database
        call_command("restore_database", str(dump), database_url=scratch_database.url())


def test_a_damaged_dump_or_a_non_empty_target_is_refused(tmp_path, scratch_database):
    _some_history()
    call_command("backup_database", output_dir=str(tmp_path))
    [dump] = list(tmp_path.glob("opsconsole-*.dump"))
    with pytest.raises(CommandError, match="over the console's live database"):
        call_command("restore_database", str(dump), database_url=processes.subprocess_database_url())
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    with pytest.raises(CommandError, match="checksum mismatch"):
        call_command("restore_database", str(dump), database_url=scratch_database.url())
    assert _rows(scratch_database, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")[0][0] == 0
    (tmp_path / f"{dump.name}.sha256").unlink()
    with pytest.raises(CommandError, match="sha256 is missing"):
        call_command("restore_database", str(dump), database_url=scratch_database.url())


def test_a_restored_log_that_lost_rows_fails_verification(tmp_path, scratch_database):
    """The manifest's head: a dump whose audit log was cut short after the head
    was recorded (rows deleted, head rewritten) does not pass."""
    _some_history()
    call_command("backup_database", output_dir=str(tmp_path))
    [dump] = list(tmp_path.glob("opsconsole-*.dump"))
    manifest = tmp_path / f"{dump.name}.json"
    data = json.loads(manifest.read_text())
    stream, position, digest = data["audit_heads"][0].split(":")
    data["audit_heads"][0] = f"{stream}:{int(position) + 5}:{digest}"
    manifest.write_text(json.dumps(data))
    with pytest.raises(CommandError, match="does not verify"):
        call_command("restore_database", str(dump), database_url=scratch_database.url())


def test_old_dumps_are_deleted_after_the_retention(tmp_path):
    old = tmp_path / "opsconsole-20200101T000000Z.dump"
    for path in (old, tmp_path / f"{old.name}.sha256", tmp_path / f"{old.name}.json"):
        path.write_text("old")
        os.utime(path, (time.time() - 31 * 86400,) * 2)
    keep = tmp_path / "notes.txt"
    keep.write_text("not a dump")
    os.utime(keep, (time.time() - 400 * 86400,) * 2)
    call_command("backup_database", output_dir=str(tmp_path), retention_days=30)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert old.name not in names and f"{old.name}.sha256" not in names and "notes.txt" in names
    assert len([n for n in names if n.endswith(".dump")]) == 1
    entry = AuditEntry.objects.filter(action="backup.create").latest("seq")
    assert entry.after["pruned"] == [old.name] and entry.actor_label == "manage.py backup_database"
