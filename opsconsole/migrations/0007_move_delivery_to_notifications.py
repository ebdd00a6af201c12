"""Delivery moved to the notifications app (notifications/migrations/0001).

State only: the table and its rows stay where they are; the notifications
app takes the model over in its own first migration, then renames the table.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("opsconsole", "0006_trust_existing_email_addresses"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="Delivery")],
            database_operations=[],
        ),
    ]
