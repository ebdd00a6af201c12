"""Delivery moved to the notifications app (notifications/migrations/0001).

State only: the table and its rows stay where they are; the notifications
app takes the model over in its own first migration, then renames the table.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("opsconsole", "0003_delivery_service_webhook_url"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="Delivery")],
            database_operations=[],
        ),
    ]
