"""Changing an alert mapping that replaces an existing one says what it replaced (issue 13)."""

import html

import pytest
from django.urls import reverse

from incidents.models import AlertSeverityMapping
from opsconsole.models import AuditEntry
from opsconsole.roles import Role

pytestmark = pytest.mark.django_db


def _set(client, value, sev):
    response = client.post(reverse("incidents:alert_mapping_set"), {"label_value": value, "severity": sev}, follow=True)
    return html.unescape(response.content.decode())


def test_replacing_a_mapping_names_the_previous_sev(client_as):
    client = client_as(Role.MANAGER)
    AlertSeverityMapping.objects.filter(label_value="pager").delete()
    assert "Alerts with severity “pager” open SEV-3 (a new mapping)." in _set(client, "pager", 3)
    body = _set(client, "Pager", 1)
    assert "Alerts with severity “pager” open SEV-1. This replaced the previous mapping to SEV-3." in body
    assert "unchanged, that was already the mapping" in _set(client, "pager", 1)
    assert AlertSeverityMapping.objects.get(label_value="pager").severity_id == 1
    entry = AuditEntry.objects.filter(action="incident.alert_mapping_set").order_by("-seq")[1]
    assert entry.before == {"severity": 3} and entry.after == {"severity": 1}
