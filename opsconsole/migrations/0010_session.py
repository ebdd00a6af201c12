"""Sessions move to opsconsole_session (opsconsole.models.Session): Django's
session row plus the signed-in user's id, so that a request reads its
session and its user in one statement (opsconsole/sessions.py).

Live sessions are copied, with the user id their data names, so nobody is
signed out; django_session is left as it was (no longer read).
"""

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.db import migrations, models
from django.utils import timezone

BATCH = 1000


def _user_id(data: dict) -> int | None:
    try:
        return int(data[SESSION_KEY])
    except (KeyError, TypeError, ValueError):
        return None


def copy_sessions(apps, schema_editor):
    connection = schema_editor.connection
    if "django_session" not in connection.introspection.table_names():
        return
    Session = apps.get_model("opsconsole", "Session")
    # Same signing salt as opsconsole.sessions.SessionStore (both classes are named SessionStore).
    decoder = SessionStore()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT session_key, session_data, expire_date FROM django_session WHERE expire_date > %s",
            [timezone.now()],
        )
        while rows := cursor.fetchmany(BATCH):
            Session.objects.using(connection.alias).bulk_create(
                [
                    Session(session_key=key, session_data=data, expire_date=expires, user_id=_user_id(decoder.decode(data)))
                    for key, data, expires in rows
                ],
                ignore_conflicts=True,
            )


class Migration(migrations.Migration):
    dependencies = [("opsconsole", "0009_audit_append_function"), ("sessions", "0001_initial")]

    operations = [
        migrations.CreateModel(
            name="Session",
            fields=[
                (
                    "session_key",
                    models.CharField(max_length=40, primary_key=True, serialize=False, verbose_name="session key"),
                ),
                ("session_data", models.TextField(verbose_name="session data")),
                ("expire_date", models.DateTimeField(db_index=True, verbose_name="expire date")),
                ("user_id", models.BigIntegerField(blank=True, null=True)),
            ],
            options={
                "verbose_name": "session",
                "verbose_name_plural": "sessions",
                "db_table": "opsconsole_session",
                "abstract": False,
            },
        ),
        migrations.RunPython(copy_sessions, migrations.RunPython.noop),
    ]
