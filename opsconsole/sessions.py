"""Django's database sessions, loaded with one fixed SQL statement.

Every request of a signed-in user loads the session. Django's store builds
that query through the ORM each time; this store sends the same SELECT
(the key, not expired) as plain SQL, which costs a fraction of the CPU.
Everything else (saving, expiry, cycling the key at sign-in, clearsessions)
is Django's own.
"""

from django.contrib.sessions.backends import db
from django.db import connections, router
from django.utils import timezone


class SessionStore(db.SessionStore):
    def _get_session_from_db(self):
        model = self.model
        with connections[router.db_for_read(model)].cursor() as cursor:
            cursor.execute(
                f"SELECT session_data FROM {model._meta.db_table} "  # nosec B608  # table name from model _meta
                "WHERE session_key = %s AND expire_date > %s",
                [self.session_key, timezone.now()],
            )
            row = cursor.fetchone()
        if row is None:
            self._session_key = None
            return None
        return model(session_key=self.session_key, session_data=row[0])
