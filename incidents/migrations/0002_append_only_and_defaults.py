"""Make the timeline append-only in the database, and seed the SEV table.

The trigger refuses every UPDATE and DELETE on incidents_timelineevent, so
no code path (ORM, admin, raw SQL, a future bug) can rewrite history; a
correction is a new row. Stars live in incidents_eventstar for that reason.
TRUNCATE (test flushes) is not a row operation and stays possible. The
mechanism is shared with the audit log (opsconsole.append_only).
"""

from django.db import migrations

from opsconsole import append_only


def triggers_up(apps, schema_editor):
    append_only.install(schema_editor, "incidents_timelineevent", "add a correcting event instead")


def triggers_down(apps, schema_editor):
    append_only.uninstall(schema_editor, "incidents_timelineevent")


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
