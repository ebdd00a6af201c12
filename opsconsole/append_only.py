"""Append-only tables, enforced by the database.

A trigger refuses every UPDATE and DELETE on the table, so that no code path
(ORM, admin, raw SQL, a future bug) can rewrite history; a correction is a
new row. TRUNCATE (test flushes) is not a row operation and stays possible.
Used by the audit log and the incident timeline; migrations call
`append_only_operation(table, hint)`.
"""

from django.db import migrations


def _pg_up(table: str, hint: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '{table} is append-only: % refused ({hint})', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER {table}_append_only
    BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION {table}_append_only();
"""


def _pg_down(table: str) -> str:
    return f"""
DROP TRIGGER IF EXISTS {table}_append_only ON {table};
DROP FUNCTION IF EXISTS {table}_append_only();
"""


def _sqlite_up(table: str) -> list[str]:
    return [
        f"""CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
       BEGIN SELECT RAISE(ABORT, '{table} is append-only: UPDATE refused'); END;""",
        f"""CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
       BEGIN SELECT RAISE(ABORT, '{table} is append-only: DELETE refused'); END;""",
    ]


def _sqlite_down(table: str) -> list[str]:
    return [f"DROP TRIGGER IF EXISTS {table}_no_update;", f"DROP TRIGGER IF EXISTS {table}_no_delete;"]


def _run(schema_editor, statements: list[str]) -> None:
    for sql in statements:
        schema_editor.execute(sql, params=None)


def install(schema_editor, table: str, hint: str) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        _run(schema_editor, [_pg_up(table, hint)])
    elif vendor == "sqlite":
        _run(schema_editor, _sqlite_up(table))
    else:
        raise RuntimeError(f"no append-only trigger for {vendor}: add one before using this database")


def uninstall(schema_editor, table: str) -> None:
    vendor = schema_editor.connection.vendor
    _run(schema_editor, [_pg_down(table)] if vendor == "postgresql" else _sqlite_down(table))


def append_only_operation(table: str, hint: str) -> migrations.RunPython:
    """A migration operation that makes `table` append-only (and undoes it on reverse)."""
    return migrations.RunPython(
        lambda apps, schema_editor: install(schema_editor, table, hint),
        lambda apps, schema_editor: uninstall(schema_editor, table),
    )
