"""The audit log becomes several hash chains ("streams", opsconsole.audit),
so that concurrent writers stop queueing behind one head row.

Existing rows are stream 1, their position their old `seq`: their hashes do
not change (opsconsole.audit.compute_hash hashes stream 1 as before), and the
old head becomes stream 1's head. `seq` becomes an identity column (global
order only). The append-only triggers are lifted for the backfill and put
back; the head trigger now guards `position`.
"""

from django.db import migrations, models

from opsconsole import append_only

AUDIT_TABLE = "opsconsole_auditentry"
HINT = "the audit log is never rewritten"

HEAD_PG_UP = """
CREATE OR REPLACE FUNCTION opsconsole_audithead_forward_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.id <> OLD.id OR NEW.position < OLD.position
            OR (NEW.position = OLD.position AND NEW.hash <> OLD.hash) THEN
        RAISE EXCEPTION 'opsconsole_audithead only moves forward: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""
HEAD_PG_DOWN = """
CREATE OR REPLACE FUNCTION opsconsole_audithead_forward_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.seq < OLD.seq OR (NEW.seq = OLD.seq AND NEW.hash <> OLD.hash) THEN
        RAISE EXCEPTION 'opsconsole_audithead only moves forward: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""
# SQLite rebuilds a table to alter it, dropping its triggers: both are made again.
HEAD_SQLITE_UP = [
    "DROP TRIGGER IF EXISTS opsconsole_audithead_no_rewind;",
    "DROP TRIGGER IF EXISTS opsconsole_audithead_no_delete;",
    """CREATE TRIGGER opsconsole_audithead_no_delete BEFORE DELETE ON opsconsole_audithead
       BEGIN SELECT RAISE(ABORT, 'opsconsole_audithead only moves forward: DELETE refused'); END;""",
    """CREATE TRIGGER opsconsole_audithead_no_rewind BEFORE UPDATE ON opsconsole_audithead
       WHEN NEW.id <> OLD.id OR NEW.position < OLD.position
            OR (NEW.position = OLD.position AND NEW.hash <> OLD.hash)
       BEGIN SELECT RAISE(ABORT, 'opsconsole_audithead only moves forward: UPDATE refused'); END;""",
]
HEAD_SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS opsconsole_audithead_no_rewind;",
    """CREATE TRIGGER opsconsole_audithead_no_rewind BEFORE UPDATE ON opsconsole_audithead
       WHEN NEW.seq < OLD.seq OR (NEW.seq = OLD.seq AND NEW.hash <> OLD.hash)
       BEGIN SELECT RAISE(ABORT, 'opsconsole_audithead only moves forward: UPDATE refused'); END;""",
]


def lift_append_only(apps, schema_editor):
    append_only.uninstall(schema_editor, AUDIT_TABLE)


def restore_append_only(apps, schema_editor):
    append_only.install(schema_editor, AUDIT_TABLE, HINT)


def backfill_positions(apps, schema_editor):
    AuditEntry = apps.get_model("opsconsole", "AuditEntry")
    AuditEntry.objects.update(position=models.F("seq"), stream=1)


def head_trigger_up(apps, schema_editor):
    postgres = schema_editor.connection.vendor == "postgresql"
    for sql in [HEAD_PG_UP] if postgres else HEAD_SQLITE_UP:
        schema_editor.execute(sql, params=None)
    if postgres:
        # The identity column continues after the rows already there.
        schema_editor.execute(
            "SELECT setval(pg_get_serial_sequence('opsconsole_auditentry', 'seq'), "
            "COALESCE((SELECT MAX(seq) FROM opsconsole_auditentry), 0) + 1, false)",
            params=None,
        )


def head_trigger_down(apps, schema_editor):
    postgres = schema_editor.connection.vendor == "postgresql"
    for sql in [HEAD_PG_DOWN] if postgres else HEAD_SQLITE_DOWN:
        schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [("opsconsole", "0007_move_delivery_to_notifications")]

    operations = [
        migrations.RunPython(lift_append_only, restore_append_only),
        migrations.RemoveConstraint(model_name="audithead", name="audithead_single_row"),
        migrations.RenameField(model_name="audithead", old_name="seq", new_name="position"),
        migrations.AlterField(
            model_name="audithead",
            name="id",
            field=models.PositiveSmallIntegerField(primary_key=True, serialize=False),
        ),
        migrations.AddConstraint(
            model_name="audithead",
            constraint=models.CheckConstraint(condition=models.Q(id__gte=1), name="audithead_stream_positive"),
        ),
        migrations.AddField(
            model_name="auditentry", name="stream", field=models.PositiveSmallIntegerField(default=1)
        ),
        migrations.AddField(model_name="auditentry", name="position", field=models.BigIntegerField(null=True)),
        migrations.RunPython(backfill_positions, migrations.RunPython.noop),
        migrations.AlterField(model_name="auditentry", name="position", field=models.BigIntegerField()),
        migrations.AlterField(
            model_name="auditentry",
            name="seq",
            field=models.BigAutoField(primary_key=True, serialize=False),
        ),
        migrations.AddConstraint(
            model_name="auditentry",
            constraint=models.UniqueConstraint(fields=("stream", "position"), name="auditentry_stream_position"),
        ),
        migrations.RunPython(head_trigger_up, head_trigger_down),
        migrations.RunPython(restore_append_only, lift_append_only),
    ]
