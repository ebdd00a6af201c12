"""Authentication backends that load a signed-in user's roles with the user.

Every request of a signed-in user loads the user from the session; the
first permission check then read the user's groups with a second query.
These backends read the role (group) names in the user's own query
(PostgreSQL: array_agg over the user's groups), so a request spends one
statement on "who is this and what may they do", not two. Roles are read
from the database on every request exactly as before: nothing is cached
across requests, so a role change applies to the user's next request.
"""

import functools

from allauth.account.auth_backends import AuthenticationBackend as AllauthBackend
from django.contrib.auth.backends import ModelBackend
from django.db import connection

from .roles import roles_from_group_names


def _user_with_roles(backend, user_id):
    from django.contrib.auth import get_user_model

    model = get_user_model()
    if connection.vendor != "postgresql":
        return ModelBackend.get_user(backend, user_id)
    # Plain SQL of a fixed text, read with a cursor: the ORM's compiler
    # (annotate + aggregate + GROUP BY) or a RawQuerySet (column mapping on
    # every call) cost more CPU than the query itself.
    sql, attnames = _user_query(model)
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
    from django.contrib.auth.models import Group

    fields = model._meta.concrete_fields
    through = model.groups.through._meta
    user_column = model.groups.field.m2m_column_name()
    group_column = model.groups.field.m2m_reverse_name()
    columns = ", ".join(f'u."{field.column}"' for field in fields)
    sql = (
        f"SELECT {columns}, ARRAY(SELECT g.name FROM {Group._meta.db_table} g "  # nosec B608  # names from model _meta
        f"JOIN {through.db_table} ug ON ug.{group_column} = g.id "
        f"WHERE ug.{user_column} = u.id) "
        f"FROM {model._meta.db_table} u WHERE u.{model._meta.pk.column} = %s"
    )
    return sql, [field.attname for field in fields]


class RolesModelBackend(ModelBackend):
    """Django's username/password backend; get_user also loads the roles."""

    def get_user(self, user_id):
        return _user_with_roles(self, user_id)


class RolesAllauthBackend(AllauthBackend):
    """allauth's backend (sign-in by e-mail); get_user also loads the roles."""

    def get_user(self, user_id):
        return _user_with_roles(self, user_id)
