"""Authentication backends (and the API token lookup) that load a user's
roles with the user.

Every request of a signed-in user loads the user from the session; the
first permission check then read the user's groups with a second query.
These backends read the role (group) names in the user's own query
(PostgreSQL: array_agg over the user's groups), so a request spends one
statement on "who is this and what may they do", not two. Roles are read
from the database on every request exactly as before: nothing is cached
across requests, so a role change applies to the user's next request.
On a request (PostgreSQL) that query is part of the session's own
statement (opsconsole/sessions.py): the backend takes the row read there
when it is the user the session's signed data names.
"""

import functools
from contextvars import ContextVar

from allauth.account.auth_backends import AuthenticationBackend as AllauthBackend
from django.contrib.auth.backends import ModelBackend
from django.db import connection

from .roles import roles_from_group_names

# The request's session while Django's get_user runs: the session store may
# have read the user with the session (opsconsole/sessions.py). Set by
# opsconsole.middleware.AuthenticationMiddleware, for that call only.
current_session: ContextVar = ContextVar("opsconsole_auth_session", default=None)


def _user_with_roles(backend, user_id):
    from django.contrib.auth import get_user_model

    model = get_user_model()
    if connection.vendor != "postgresql":
        return ModelBackend.get_user(backend, user_id)
    # Plain SQL of a fixed text, read with a cursor: the ORM's compiler
    # (annotate + aggregate + GROUP BY) or a RawQuerySet (column mapping on
    # every call) cost more CPU than the query itself.
    sql, attnames = _user_query(model)
    loaded = getattr(current_session.get(), "loaded_user", None)
    if loaded is not None and str(loaded[0]) == str(user_id):
        # Read in the session's own statement, for the user its signed data names.
        row = loaded[1]
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, [user_id])
            row = cursor.fetchone()
    if row is None:
        return None
    user = model.from_db(connection.alias, attnames, row[:-1])
    if not backend.user_can_authenticate(user):
        return None
    user._opsconsole_roles = roles_from_group_names(user, row[-1])
    return user


@functools.cache
def _user_query(model) -> tuple[str, list[str]]:
    """The user's concrete columns and the names of their groups, one row."""
    columns, attnames = _columns(model, "u")
    sql = (
        f"SELECT {columns}, {_group_names(model)} "  # nosec B608  # names from model _meta
        f"FROM {model._meta.db_table} u WHERE u.{model._meta.pk.column} = %s"
    )
    return sql, attnames


def _columns(model, alias: str) -> tuple[str, list[str]]:
    fields = model._meta.concrete_fields
    return ", ".join(f'{alias}."{field.column}"' for field in fields), [field.attname for field in fields]


def _group_names(model) -> str:
    """An ARRAY of the group names of user row `u`."""
    from django.contrib.auth.models import Group

    through = model.groups.through._meta
    user_column = model.groups.field.m2m_column_name()
    group_column = model.groups.field.m2m_reverse_name()
    return (
        f"ARRAY(SELECT g.name FROM {Group._meta.db_table} g "  # nosec B608  # names from model _meta
        f"JOIN {through.db_table} ug ON ug.{group_column} = g.id WHERE ug.{user_column} = u.id)"
    )


def active_api_token(token_hash: str):
    """The unrevoked API token of that hash with its active user and the
    user's roles, in one statement on PostgreSQL (two by the ORM: the
    token with its user, then the groups, 2.8 ms of CPU of an Alertmanager
    delivery's 25). None when there is none."""
    from django.contrib.auth import get_user_model

    from .models import ApiToken

    user_model = get_user_model()
    if connection.vendor != "postgresql":
        return (
            ApiToken.objects.active().select_related("user").filter(token_hash=token_hash, user__is_active=True).first()
        )
    sql, token_attnames, user_attnames = _token_query(ApiToken, user_model)
    with connection.cursor() as cursor:
        cursor.execute(sql, [token_hash])
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(token_attnames)
    token = ApiToken.from_db(connection.alias, token_attnames, row[:split])
    user = user_model.from_db(connection.alias, user_attnames, row[split:-1])
    user._opsconsole_roles = roles_from_group_names(user, row[-1])
    token.user = user
    return token


@functools.cache
def _token_query(token_model, user_model) -> tuple[str, list[str], list[str]]:
    token_columns, token_attnames = _columns(token_model, "t")
    user_columns, user_attnames = _columns(user_model, "u")
    join = f"u.{user_model._meta.pk.column} = t.{token_model._meta.get_field('user').column}"
    sql = (
        f"SELECT {token_columns}, {user_columns}, {_group_names(user_model)} "  # nosec B608  # names from model _meta
        f"FROM {token_model._meta.db_table} t JOIN {user_model._meta.db_table} u ON {join} "
        "WHERE t.token_hash = %s AND t.revoked_at IS NULL AND u.is_active"
    )
    return sql, token_attnames, user_attnames


def user_join_sql() -> tuple[str, str]:
    """The columns _user_with_roles reads and the LEFT JOIN that finds them
    for a row `s` with a `user_id` (the session store's statement)."""
    from django.contrib.auth import get_user_model

    model = get_user_model()
    columns, _attnames = _columns(model, "u")
    join = f"LEFT JOIN {model._meta.db_table} u ON u.{model._meta.pk.column} = s.user_id"
    return f"{columns}, {_group_names(model)}", join


class RolesModelBackend(ModelBackend):
    """Django's username/password backend; get_user also loads the roles."""

    def get_user(self, user_id):
        return _user_with_roles(self, user_id)


class RolesAllauthBackend(AllauthBackend):
    """allauth's backend (sign-in by e-mail); get_user also loads the roles."""

    def get_user(self, user_id):
        return _user_with_roles(self, user_id)
