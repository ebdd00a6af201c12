"""Authentication backends that load a signed-in user's roles with the user.

Every request of a signed-in user loads the user from the session; the
first permission check then read the user's groups with a second query.
These backends read the role (group) names in the user's own query
(PostgreSQL: array_agg over the user's groups), so a request spends one
statement on "who is this and what may they do", not two. Roles are read
from the database on every request exactly as before: nothing is cached
across requests, so a role change applies to the user's next request.
"""

from allauth.account.auth_backends import AuthenticationBackend as AllauthBackend
from django.contrib.auth.backends import ModelBackend
from django.db import connection

from .roles import roles_from_group_names


def _user_with_roles(backend, user_id):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    model = get_user_model()
    if connection.vendor != "postgresql":
        return ModelBackend.get_user(backend, user_id)
    # A raw query: the ORM's compiler (annotate + aggregate + GROUP BY) costs
    # more CPU than the query saves; this one has a fixed text.
    through = model.groups.through._meta
    user_column = model.groups.field.m2m_column_name()
    group_column = model.groups.field.m2m_reverse_name()
    users = model._default_manager.raw(
        f"SELECT u.*, ARRAY(SELECT g.name FROM {Group._meta.db_table} g "  # nosec B608  # names from model _meta
        f"JOIN {through.db_table} ug ON ug.{group_column} = g.id "
        f"WHERE ug.{user_column} = u.id) AS opsconsole_role_names "
        f"FROM {model._meta.db_table} u WHERE u.{model._meta.pk.column} = %s",
        [user_id],
    )
    user = next(iter(users), None)
    if user is None or not backend.user_can_authenticate(user):
        return None
    user._opsconsole_roles = roles_from_group_names(user, user.opsconsole_role_names)
    return user


class RolesModelBackend(ModelBackend):
    """Django's username/password backend; get_user also loads the roles."""

    def get_user(self, user_id):
        return _user_with_roles(self, user_id)


class RolesAllauthBackend(AllauthBackend):
    """allauth's backend (sign-in by e-mail); get_user also loads the roles."""

    def get_user(self, user_id):
        return _user_with_roles(self, user_id)
