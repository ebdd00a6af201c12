"""The PostgreSQL check runs one read-only statement, whatever its query says.

On the real PostgreSQL with a superuser DSN (the worst case: the
development DSN reaches the console's own database). Each attack is tried
against a table the test owns; the table must be unchanged afterwards.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.healthchecks.test_probes import probe


@pytest.fixture
def victim(db):
    """A committed table (the probe uses its own connection) and the DSN."""
    from django.db import connection

    s = connection.settings_dict
    dsn = (
        f"postgresql://{s['USER']}:{s.get('PASSWORD') or ''}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
    )
    table = f"probe_victim_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f"CREATE TABLE {table} (x int)")
        admin.execute(f"INSERT INTO {table} VALUES (1)")
    yield dsn, table
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f"DROP TABLE IF EXISTS {table}")
        admin.execute("DROP TABLE IF EXISTS probe_made_this")


def _rows(dsn: str, table: str) -> list:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(f"SELECT x FROM {table} ORDER BY x").fetchall()


@pytest.mark.parametrize(
    "query",
    [
        # The attack: leave the read-only transaction, then write.
        "SELECT 1; COMMIT; BEGIN TRANSACTION READ WRITE; UPDATE {t} SET x = 2",
        "SELECT 1; COMMIT; BEGIN TRANSACTION READ WRITE; UPDATE {t} SET x = 2; COMMIT",
        "select 1; set transaction read write; update {t} set x = 2",
        "SELECT 1; UPDATE {t} SET x = 2",
        "SELECT 1;UPDATE {t} SET x = 2;SELECT 1",
        # One statement that tries to switch the transaction to read-write.
        "SELECT set_config('transaction_read_only', 'off', false), (SELECT 1 FROM {t})",
        "select set_config('default_transaction_read_only', 'off', false)",
        # One statement that writes.
        "WITH changed AS (UPDATE {t} SET x = 2 RETURNING x) SELECT count(*) FROM changed",
        "SELECT * INTO probe_made_this FROM {t}",
        "SELECT x FROM {t} FOR UPDATE",
        # Not a SELECT at all.
        "COMMIT",
        "SET TRANSACTION READ WRITE",
        "UPDATE {t} SET x = 2",
        "  /* hidden */ UPDATE {t} SET x = 2",
    ],
)
def test_no_query_changes_anything(victim, query):
    dsn, table = victim
    result = probe("postgres", {"dsn": dsn, "query": query.format(t=table)}, timeout=5)
    assert result.state == "critical", result.message
    assert _rows(dsn, table) == [(1,)]
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('probe_made_this')").fetchone() == (None,)


def test_several_statements_are_refused_by_the_protocol_with_a_clear_message(victim):
    dsn, table = victim
    result = probe("postgres", {"dsn": dsn, "query": f"SELECT 1; UPDATE {table} SET x = 2"})
    assert result.message == "query failed: cannot insert multiple commands into a prepared statement"
    assert result.summary == "query failed"


def test_a_dsn_asking_for_read_write_is_still_read_only(victim):
    dsn, table = victim
    hostile = dsn + "?options=-c%20default_transaction_read_only%3Doff"
    query = f"WITH changed AS (UPDATE {table} SET x = 5 RETURNING x) SELECT count(*) FROM changed"
    result = probe("postgres", {"dsn": hostile, "query": query})
    assert result.message == "the query tried to write: checks run read-only"
    assert _rows(dsn, table) == [(1,)]


def test_read_only_queries_still_work(victim):
    dsn, table = victim
    result = probe("postgres", {"dsn": dsn, "query": f"SELECT count(*) FROM {table};"}, warning=5, critical=10)
    assert (result.state, result.message) == ("ok", "query value 1")
    assert result.summary == "query value within the thresholds"  # the value is for config.edit only
    with_cte = probe("postgres", {"dsn": dsn, "query": f"WITH t AS (SELECT x FROM {table}) SELECT max(x) FROM t"})
    assert with_cte.state == "ok" and with_cte.details["value"] == 1


def test_a_non_numeric_value_is_echoed_only_as_a_short_excerpt(victim):
    dsn, _table = victim
    result = probe("postgres", {"dsn": dsn, "query": "SELECT 'secret-' || repeat('x', 5000)"})
    assert result.state == "critical"
    assert result.message.startswith("the query returned 'secret-xxx") and len(result.message) < 100
    assert "secret" not in result.summary


def test_an_error_quoting_data_is_bounded(victim):
    dsn, _table = victim
    result = probe("postgres", {"dsn": dsn, "query": "SELECT ('v' || repeat('y', 5000))::int"})
    assert result.message.startswith("query failed: invalid input syntax for type integer")
    assert len(result.message) <= len("query failed: ") + 100
    assert result.summary == "query failed"
