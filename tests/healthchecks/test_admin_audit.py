import pytest
from django.urls import reverse

from healthchecks.models import Check
from opsconsole.models import AuditEntry, Service
from opsconsole.roles import Role


@pytest.mark.django_db
def test_admin_edit_of_a_check_keeps_its_secrets_out_of_the_audit_log(client_as):
    client = client_as(Role.ADMIN, is_staff=True, is_superuser=True)
    service = Service.objects.create(name="DB", slug="db")
    check = Check.objects.create(
        name="primary",
        service=service,
        kind="postgres",
        config={"dsn": "postgres://app:s3cret@db:5432/app", "query": "SELECT 1"},
    )
    url = reverse("admin:healthchecks_check_change", args=[check.pk])
    form = client.get(url).context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data["config"] = '{"dsn": "postgres://app:n3wsecret@db:5432/app", "query": "SELECT 2"}'
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    entry = AuditEntry.objects.get(action="healthchecks.check.admin_change")
    assert "s3cret" not in str(entry.before) and "n3wsecret" not in str(entry.after)
    assert entry.after["config"]["query"] == "SELECT 2"
