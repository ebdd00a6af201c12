"""Big batches of rows on PostgreSQL, with their parameters sent as binary arrays.

Django's psycopg cursors bind parameters on the client: every element of the
arrays that bulk_create (and a hand-written UPDATE … FROM unnest) sends is
quoted into the SQL text, and Django prepares each value of each row field by
field. For the sweeps' batches (500 timeline events, deliveries, audit rows)
that cost more CPU than everything else the sweep does. Here the same rows
travel as one binary array per column through a server-side-binding cursor.
"""

import enum
import json
from typing import TypeVar

from django.db import connection, models
from django.db.models.fields import AutoFieldMixin

M = TypeVar("M", bound=models.Model)


def bound_cursor():
    """A cursor that sends its parameters apart from the SQL (server-side
    binding), still through Django's cursor wrapper (query logging, execute
    wrappers, the transaction)."""
    import psycopg

    connection.ensure_connection()
    raw = psycopg.Cursor(connection.connection)
    return connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)


def insert_many(objs: list[M]) -> list[M]:
    """What `Model.objects.bulk_create(objs)` does for plain rows (no
    conflicts handling, no multi-table inheritance), in one INSERT … SELECT
    FROM unnest(binary arrays) … RETURNING the primary keys, which are set on
    the objects. Elsewhere than on PostgreSQL, or for rows that hold an
    expression, it is bulk_create itself."""
    if not objs:
        return objs
    model = type(objs[0])
    if connection.vendor != "postgresql" or len(objs) < 2:
        return model.objects.bulk_create(objs)
    meta = model._meta
    pk = meta.pk
    fields = [f for f in meta.concrete_fields if not (f is pk and isinstance(f, AutoFieldMixin))]
    columns, arrays, params = [], [], []
    for field in fields:
        values = [field.pre_save(obj, add=True) for obj in objs]
        if any(hasattr(value, "as_sql") for value in values):
            return model.objects.bulk_create(objs)
        columns.append(connection.ops.quote_name(field.column))
        if isinstance(field, models.JSONField):
            # jsonb travels as text (psycopg would otherwise need a wrapper per value).
            params.append([None if v is None else json.dumps(v, cls=field.encoder) for v in values])
            arrays.append("%b::text[]::jsonb[]")
        else:
            params.append([v.value if isinstance(v, enum.Enum) else v for v in values])
            arrays.append(f"%b::{field.db_type(connection).split('(')[0]}[]")
    table, key = connection.ops.quote_name(meta.db_table), connection.ops.quote_name(pk.column)
    # Names and types from the model's _meta; every value is a %b parameter.
    sql = f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest({', '.join(arrays)}) RETURNING {key}"  # nosec B608  # _meta names only
    with bound_cursor() as cursor:
        cursor.execute(sql, params)
        ids = [row[0] for row in cursor.fetchall()]
    for obj, pk_value in zip(objs, ids, strict=True):
        setattr(obj, pk.attname, pk_value)
        obj._state.adding, obj._state.db = False, connection.alias
    return objs
