"""Existing accounts' addresses (set by admins or seeds) become their verified
primary e-mail address, as opsconsole.auth.trust_address does for new ones:
from now on an address changes only through allauth's verification flow."""

from django.db import IntegrityError, migrations, transaction


def trust(apps, schema_editor):
    User = apps.get_model("opsconsole", "User")
    EmailAddress = apps.get_model("account", "EmailAddress")
    for user in User.objects.exclude(email="").iterator():
        if EmailAddress.objects.filter(user=user, email__iexact=user.email, verified=True).exists():
            continue
        try:
            with transaction.atomic():
                EmailAddress.objects.filter(user=user, primary=True).update(primary=False)
                EmailAddress.objects.update_or_create(
                    user=user,
                    email__iexact=user.email,
                    defaults={"email": user.email, "verified": True, "primary": True},
                )
        except IntegrityError:
            pass  # another account holds this address verified


class Migration(migrations.Migration):
    dependencies = [
        ("opsconsole", "0005_link_urls_http_only"),
        ("account", "0009_emailaddress_unique_primary_email"),
    ]

    operations = [migrations.RunPython(trust, migrations.RunPython.noop)]
