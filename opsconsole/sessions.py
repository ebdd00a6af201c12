"""Django's database sessions, loaded with the signed-in user in one statement.

Every request of a signed-in user loads its session, then its user with
the user's roles (opsconsole/auth_backends.py): two round trips to
PostgreSQL before the view runs. The session row (opsconsole.models.Session)
also holds the user's id, so one fixed SELECT reads the session and joins
that user with their roles; opsconsole.middleware.AuthenticationMiddleware
hands the row to the authentication backend, which uses it only for the
user the signed session data names (Django then checks the session's
password hash as always). Everything else (saving, expiry, cycling the key
at sign-in, clearsessions) is Django's own. Other databases: the session
alone, as Django reads it, and the user in its own query.
"""

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends import db
from django.db import connections, router
from django.utils import timezone

from . import auth_backends


class SessionStore(db.SessionStore):
    # (user id, the user's row and role names, or None if no such user),
    # read with the session; None when the row names no user.
    loaded_user: tuple[int, tuple | None] | None = None

    @classmethod
    def get_model_class(cls):
        from .models import Session

        return Session

    def create_model_instance(self, data):
        instance = super().create_model_instance(data)
        try:
            instance.user_id = int(data[SESSION_KEY])
        except (KeyError, TypeError, ValueError):
            instance.user_id = None
        return instance

    def _get_session_from_db(self):
        model = self.model
        connection = connections[router.db_for_read(model)]
        table = model._meta.db_table
        self.loaded_user = None
        if connection.vendor == "postgresql":
            columns, user_join = auth_backends.user_join_sql()
            sql = (
                f"SELECT s.session_data, s.user_id, {columns} FROM {table} s {user_join} "  # nosec B608  # names from _meta
                "WHERE s.session_key = %s AND s.expire_date > %s"
            )
        else:
            sql = f"SELECT session_data FROM {table} WHERE session_key = %s AND expire_date > %s"  # nosec B608  # _meta
        with connection.cursor() as cursor:
            cursor.execute(sql, [self.session_key, timezone.now()])
            row = cursor.fetchone()
        if row is None:
            self._session_key = None
            return None
        if len(row) > 1 and row[1] is not None:
            user = row[2:]
            self.loaded_user = (row[1], None if user[0] is None else user)
        return model(session_key=self.session_key, session_data=row[0])
