from django.db import migrations

# PostgreSQL only (SQLite in `make run` relies on the service's row lock):
# the database itself refuses two shifts, or two overrides, of one rotation
# whose [starts_at, ends_at) ranges intersect.
EXCLUSIONS = [
    ("oncall_shift", "oncall_shift_no_overlap"),
    ("oncall_override", "oncall_override_no_overlap"),
]


def add_exclusions(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    for table, name in EXCLUSIONS:
        schema_editor.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {name} EXCLUDE USING gist "
            "(rotation_id WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&)"
        )


def drop_exclusions(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, name in EXCLUSIONS:
        schema_editor.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}")


class Migration(migrations.Migration):
    # Its own migration (transaction): ALTER TABLE cannot run while the data
    # migration's deferred foreign-key checks are pending.
    dependencies = [("oncall", "0002_schedule")]
    operations = [migrations.RunPython(add_exclusions, drop_exclusions)]

