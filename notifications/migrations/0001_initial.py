"""Take over Delivery from the core app without touching its rows.

The table opsconsole_delivery already exists (opsconsole 0003): the model
enters this app's state pointing at it, its content type (and so its admin
log entries and permissions) is relabelled, and then the table is renamed to
notifications_delivery by AlterModelTable (ALTER TABLE … RENAME keeps every row).
"""

import django.db.models.deletion
from django.db import migrations, models


def relabel_content_type(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="notifications", model="delivery").exists():
        ContentType.objects.filter(app_label="opsconsole", model="delivery").update(app_label="notifications")


def unlabel_content_type(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="opsconsole", model="delivery").exists():
        ContentType.objects.filter(app_label="notifications", model="delivery").update(app_label="opsconsole")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("opsconsole", "0007_move_delivery_to_notifications"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Delivery",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("channel", models.CharField(choices=[("webhook", "Webhook"), ("email", "Email")], max_length=10)),
                        ("target", models.CharField(help_text="Webhook URL or email address.", max_length=500)),
                        ("event", models.CharField(db_index=True, help_text="What happened, e.g. incident.declared.", max_length=100)),
                        ("payload", models.JSONField(help_text="Webhook: the JSON body sent. Email: subject and body.")),
                        ("status", models.CharField(choices=[("pending", "Pending"), ("sent", "Sent"), ("failed", "Failed (will retry)"), ("dead", "Dead letter")], default="pending", max_length=10)),
                        ("attempts", models.PositiveIntegerField(default=0)),
                        ("last_error", models.TextField(blank=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("sent_at", models.DateTimeField(blank=True, null=True)),
                        ("next_attempt_at", models.DateTimeField(blank=True, null=True)),
                        ("locked_until", models.DateTimeField(blank=True, editable=False, null=True)),
                        ("service", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="deliveries", to="opsconsole.service")),
                    ],
                    options={
                        "verbose_name_plural": "deliveries",
                        "ordering": ["-created_at", "-pk"],
                        "indexes": [models.Index(fields=["status", "-created_at"], name="delivery_status_created")],
                        "db_table": "opsconsole_delivery",
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(relabel_content_type, unlabel_content_type),
        migrations.AlterModelTable(name="delivery", table=None),
    ]
