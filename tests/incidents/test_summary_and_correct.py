"""The summary renders Markdown, sanitised like notes; "correct" quotes the note it
corrects above the form (issue 13)."""

import pytest
from django.urls import reverse

from incidents import services
from opsconsole.roles import Role

pytestmark = pytest.mark.django_db


def test_summary_renders_sanitised_markdown(client_as):
    client = client_as(Role.SRE)
    incident = services.incident_declare(
        actor=client.user,
        title="Checkout errors",
        severity=2,
        summary="**Payments** fail for *EU* cards\n\n- step one\n\n<script>alert(1)</script>[x](javascript:alert(2))",
    )
    body = client.get(reverse("incidents:detail", args=[incident.reference])).content.decode()
    summary = body.split('data-testid="summary">', 1)[1].split("</dd>", 1)[0]
    assert "<strong>Payments</strong>" in summary and "<em>EU</em>" in summary and "<li>step one</li>" in summary
    assert "<script" not in summary and "javascript:" not in summary


def test_correct_quotes_the_note_being_corrected(client_as):
    client = client_as(Role.SRE)
    incident = services.incident_declare(actor=client.user, title="Queue backlog", severity=3)
    wrong = services.incident_add_note(incident=incident, actor=client.user, text="Restarted **worker-3**")
    url = reverse("incidents:detail", args=[incident.reference])
    plain = client.get(url).content.decode()
    assert 'data-testid="correcting"' not in plain and ">Add note</button>" in plain
    body = client.get(url, {"correct": wrong.pk}).content.decode()
    quote = body.split('data-testid="corrected-quote">', 1)[1].split("</blockquote>", 1)[0]
    assert "Restarted <strong>worker-3</strong>" in quote
    assert "<strong>Correcting</strong> the note of" in body and ">Add correction</button>" in body
    assert f'name="corrects" value="{wrong.pk}"' in body
    # Another incident's event is never quoted.
    other = services.incident_declare(actor=client.user, title="Other", severity=3)
    body = client.get(reverse("incidents:detail", args=[other.reference]), {"correct": wrong.pk}).content.decode()
    assert 'data-testid="correcting"' not in body
    # A refused correction keeps the quote above the form.
    response = client.post(
        reverse("incidents:note", args=[incident.reference]),
        {"text": "", "corrects": wrong.pk},
        headers={"HX-Request": "true"},
    )
    assert 'data-testid="corrected-quote"' in response.content.decode()
