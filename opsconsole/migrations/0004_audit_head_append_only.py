"""The audit log becomes append-only in the database, and its chain's head
is kept in a row of its own (opsconsole.AuditHead) that only moves forward
(an UPDATE that changes nothing is allowed: loading a fixture does that).

The head starts from the log as it is: its last row, or the genesis hash.
"""

from django.db import migrations, models

from opsconsole import append_only

HEAD_PG_UP = """
CREATE OR REPLACE FUNCTION opsconsole_audithead_forward_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.seq < OLD.seq OR (NEW.seq = OLD.seq AND NEW.hash <> OLD.hash) THEN
        RAISE EXCEPTION 'opsconsole_audithead only moves forward: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER opsconsole_audithead_forward_only
    BEFORE UPDATE OR DELETE ON opsconsole_audithead
    FOR EACH ROW EXECUTE FUNCTION opsconsole_audithead_forward_only();
"""
HEAD_PG_DOWN = """
DROP TRIGGER IF EXISTS opsconsole_audithead_forward_only ON opsconsole_audithead;
DROP FUNCTION IF EXISTS opsconsole_audithead_forward_only();
"""
HEAD_SQLITE_UP = [
    """CREATE TRIGGER opsconsole_audithead_no_rewind BEFORE UPDATE ON opsconsole_audithead
       WHEN NEW.seq < OLD.seq OR (NEW.seq = OLD.seq AND NEW.hash <> OLD.hash)
       BEGIN SELECT RAISE(ABORT, 'opsconsole_audithead only moves forward: UPDATE refused'); END;""",
    """CREATE TRIGGER opsconsole_audithead_no_delete BEFORE DELETE ON opsconsole_audithead
       BEGIN SELECT RAISE(ABORT, 'opsconsole_audithead only moves forward: DELETE refused'); END;""",
]
HEAD_SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS opsconsole_audithead_no_rewind;",
    "DROP TRIGGER IF EXISTS opsconsole_audithead_no_delete;",
]


def head_up(apps, schema_editor):
    AuditEntry = apps.get_model("opsconsole", "AuditEntry")
    AuditHead = apps.get_model("opsconsole", "AuditHead")
    last = AuditEntry.objects.order_by("-seq").first()
    AuditHead.objects.create(
        id=1,
        seq=last.seq if last else 0,
        hash=last.hash if last else "0" * 64,
        updated_at=last.created_at if last else "1970-01-01T00:00:00Z",
    )
    postgres = schema_editor.connection.vendor == "postgresql"
    for sql in [HEAD_PG_UP] if postgres else HEAD_SQLITE_UP:
        schema_editor.execute(sql, params=None)


def head_down(apps, schema_editor):
    postgres = schema_editor.connection.vendor == "postgresql"
    for sql in [HEAD_PG_DOWN] if postgres else HEAD_SQLITE_DOWN:
        schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [("opsconsole", "0003_delivery_service_webhook_url")]

    operations = [
        migrations.CreateModel(
            name="AuditHead",
            fields=[
                ("id", models.PositiveSmallIntegerField(default=1, editable=False, primary_key=True, serialize=False)),
                ("seq", models.BigIntegerField()),
                ("hash", models.CharField(max_length=64)),
                ("updated_at", models.DateTimeField()),
            ],
            options={
                "constraints": [models.CheckConstraint(condition=models.Q(("id", 1)), name="audithead_single_row")],
            },
        ),
        append_only.append_only_operation("opsconsole_auditentry", "the audit log is never rewritten"),
        migrations.RunPython(head_up, head_down),
    ]
