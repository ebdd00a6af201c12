"""Make the timeline append-only in the database, and seed the SEV table.

The trigger refuses every UPDATE and DELETE on incidents_timelineevent, so
no code path (ORM, admin, raw SQL, a future bug) can rewrite history; a
correction is a new row. Stars live in incidents_eventstar for that reason.
TRUNCATE (test flushes) is not a row operation and stays possible.
"""

from django.db import migrations

PG_UP = """
CREATE OR REPLACE FUNCTION incidents_timelineevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'incidents_timelineevent is append-only: % refused (add a correcting event instead)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER incidents_timelineevent_append_only
    BEFORE UPDATE OR DELETE ON incidents_timelineevent
    FOR EACH ROW EXECUTE FUNCTION incidents_timelineevent_append_only();
"""
PG_DOWN = """
DROP TRIGGER IF EXISTS incidents_timelineevent_append_only ON incidents_timelineevent;
DROP FUNCTION IF EXISTS incidents_timelineevent_append_only();
"""
SQLITE_UP = [
    """CREATE TRIGGER incidents_timelineevent_no_update BEFORE UPDATE ON incidents_timelineevent
       BEGIN SELECT RAISE(ABORT, 'incidents_timelineevent is append-only: UPDATE refused'); END;""",
    """CREATE TRIGGER incidents_timelineevent_no_delete BEFORE DELETE ON incidents_timelineevent
       BEGIN SELECT RAISE(ABORT, 'incidents_timelineevent is append-only: DELETE refused'); END;""",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS incidents_timelineevent_no_update;",
    "DROP TRIGGER IF EXISTS incidents_timelineevent_no_delete;",
]


def _run(schema_editor, statements):
    for sql in statements:
        schema_editor.execute(sql, params=None)


def triggers_up(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        _run(schema_editor, [PG_UP])
    elif vendor == "sqlite":
        _run(schema_editor, SQLITE_UP)
    else:
        raise RuntimeError(f"no append-only trigger for {vendor}: add one before using this database")


def triggers_down(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    _run(schema_editor, [PG_DOWN] if vendor == "postgresql" else SQLITE_DOWN)


LEVELS = [
    (1, "SEV-1", "Complete outage", "Platform down, data breach", 15, 4 * 60),
    (2, "SEV-2", "Major degradation", "Payment processing failed", 30, 8 * 60),
    (3, "SEV-3", "Partial degradation", "Slow response times", 2 * 60, 24 * 60),
    (4, "SEV-4", "Minor issue", "Non-critical bug", 4 * 60, 72 * 60),
]
MAPPINGS = {
    "critical": 1, "page": 1, "high": 2, "error": 2, "major": 2,
    "warning": 3, "medium": 3, "minor": 4, "low": 4, "info": 4,
}


def seed(apps, schema_editor):
    SeverityLevel = apps.get_model("incidents", "SeverityLevel")
    AlertSeverityMapping = apps.get_model("incidents", "AlertSeverityMapping")
    for level, name, definition, examples, ack, resolve in LEVELS:
        SeverityLevel.objects.get_or_create(
            level=level,
            defaults={"name": name, "definition": definition, "examples": examples,
                      "ack_target_minutes": ack, "resolve_target_minutes": resolve},
        )
    for value, level in MAPPINGS.items():
        AlertSeverityMapping.objects.get_or_create(label_value=value, defaults={"severity_id": level})


class Migration(migrations.Migration):
    dependencies = [("incidents", "0001_initial")]

    operations = [
        migrations.RunPython(triggers_up, triggers_down),
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
