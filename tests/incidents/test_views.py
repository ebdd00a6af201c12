import csv
import io
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from incidents import services
from incidents.models import EventKind, Incident, Status, TimelineEvent
from opsconsole.models import AuditEntry, Service
from opsconsole.roles import Role

from .factories import declare

pytestmark = pytest.mark.django_db


def _bulk_events(incident, n: int) -> None:
    now = timezone.now()
    TimelineEvent.objects.bulk_create(
        TimelineEvent(
            incident=incident,
            kind=EventKind.NOTE if i % 3 else EventKind.ALERT,
            text=f"event {i}",
            html=f"<p>event {i}</p>",
            occurred_at=now - timedelta(seconds=n - i),
            recorded_at=now - timedelta(seconds=n - i),
            author_label="bench",
        )
        for i in range(n)
    )


def test_declare_page_shows_sev_definitions_and_declares(client_as):
    client = client_as(Role.SRE)
    page = client.get(reverse("incidents:declare"))
    assert page.status_code == 200
    assert b"Complete outage" in page.content and b"Platform down, data breach" in page.content
    response = client.post(
        reverse("incidents:declare"),
        {"title": "Checkout 500s", "severity": 2, "i_am_commander": "on"},
    )
    incident = Incident.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "incidents:detail", args=[incident.reference]
    )
    assert incident.commander == client.user and incident.severity_id == 2


def test_declare_form_errors_write_nothing(client_as):
    client = client_as(Role.SRE)
    response = client.post(reverse("incidents:declare"), {"title": "", "severity": 9})
    assert response.status_code == 200 and b"This field is required" in response.content
    assert not Incident.objects.exists()


@pytest.mark.parametrize("n_events", [3, 5000])
def test_detail_first_page_has_constant_queries(client_as, django_assert_max_num_queries, n_events):
    client = client_as(Role.INCIDENT_COMMANDER)
    incident = declare(client.user, commander=client.user)
    _bulk_events(incident, n_events)
    # 14 for the incident itself, 2 for the runbooks panel (suggestions, executions).
    with django_assert_max_num_queries(16):
        response = client.get(reverse("incidents:detail", args=[incident.reference]))
    assert response.status_code == 200
    body = response.content.decode()
    assert body.count('class="event kind-') == min(n_events + 1, 50)
    assert ('data-testid="load-older"' in body) == (n_events + 1 > 50)


def test_older_pages_walk_the_whole_timeline(client_as, django_assert_max_num_queries):
    client = client_as(Role.VIEWER)
    incident = declare(None)
    _bulk_events(incident, 120)
    seen, url = [], reverse("incidents:detail", args=[incident.reference])
    body = client.get(url).content.decode()
    seen += _ids(body)
    while 'data-testid="load-older"' in body:
        before = body.split("?before=")[1].split('"')[0].split("&")[0]
        with django_assert_max_num_queries(9):
            body = client.get(
                reverse("incidents:timeline_older", args=[incident.reference]),
                {"before": before},
                headers={"HX-Request": "true"},
            ).content.decode()
        seen += _ids(body)
    assert len(seen) == 121 and len(set(seen)) == 121
    expected = TimelineEvent.objects.filter(incident=incident).order_by("-occurred_at", "-id")
    assert seen == list(expected.values_list("id", flat=True))


def _ids(body: str) -> list[int]:
    return [int(part.split('"')[0]) for part in body.split('data-event-id="')[1:]]


def test_kind_filter(client_as):
    client = client_as(Role.VIEWER)
    incident = declare(None)
    services.timeline_add_event(incident=incident, kind="alert", text="queue > 5000")
    body = client.get(reverse("incidents:detail", args=[incident.reference]), {"kind": "alert"}).content.decode()
    assert "queue &gt; 5000" in body and 'data-kind="declared"' not in body


def test_note_via_htmx_returns_new_events_and_cursor(client_as):
    client = client_as(Role.SRE)
    incident = declare(client.user)
    cursor = incident.events.get().pk
    other = services.timeline_add_event(incident=incident, kind="alert", text="someone else's event")
    response = client.post(
        reverse("incidents:note", args=[incident.reference]),
        {"text": "Pool at **100%**", "after": cursor},
        headers={"HX-Request": "true"},
    )
    body = response.content.decode()
    assert response.status_code == 200
    note = TimelineEvent.objects.get(kind="note")
    assert f'id="event-{note.pk}"' in body and f'id="event-{other.pk}"' in body
    assert "<strong>100%</strong>" in body
    assert f'id="timeline-cursor" name="after" value="{note.pk}" hx-swap-oob="true"' in body
    assert 'id="note-form"' in body  # a fresh form replaces the submitted one
    assert AuditEntry.objects.filter(action="incident.event_add", target_id=str(incident.pk)).count() == 3


def test_empty_note_via_htmx_shows_the_error(client_as):
    client = client_as(Role.SRE)
    incident = declare(client.user)
    response = client.post(
        reverse("incidents:note", args=[incident.reference]),
        {"text": ""},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200 and response["HX-Retarget"] == "#note-form"
    assert b"This field is required" in response.content
    assert incident.events.count() == 1


def test_since_poll(client_as, django_assert_max_num_queries):
    client = client_as(Role.VIEWER)
    incident = declare(None)
    cursor = incident.events.get().pk
    url = reverse("incidents:timeline_since", args=[incident.reference])
    assert client.get(url, {"after": cursor}).status_code == 204
    for i in range(30):
        services.timeline_add_event(incident=incident, kind="note", text=f"n{i}")
    with django_assert_max_num_queries(9):
        response = client.get(url, {"after": cursor}, headers={"HX-Request": "true"})
    ids = _ids(response.content.decode())
    assert len(ids) == 30 and ids == sorted(ids, reverse=True)


def test_star_toggle_via_htmx(client_as):
    client = client_as(Role.SRE)
    incident = declare(client.user)
    event = incident.events.get()
    url = reverse("incidents:star", args=[incident.reference, event.pk])
    body = client.post(url, {"starred": "1"}, headers={"HX-Request": "true"}).content.decode()
    assert "★ starred" in body and 'class="event kind-declared starred"' in body
    body = client.post(url, {"starred": "0"}, headers={"HX-Request": "true"}).content.decode()
    assert "☆ star" in body


def test_unassigned_sre_gets_403_and_nothing_changes(client_as, make_user):
    client = client_as(Role.SRE)
    incident = declare(make_user(Role.INCIDENT_COMMANDER))
    for name, data in (
        ("transition", {"to": "acknowledged"}),
        ("severity", {"severity": 1}),
        ("roles", {"commander": client.user.pk}),
        ("edit", {"title": "x"}),
    ):
        assert client.post(reverse(f"incidents:{name}", args=[incident.reference]), data).status_code == 403
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED and incident.severity_id == 2 and incident.commander is None


def test_disallowed_transition_shows_a_message(client_as):
    client = client_as(Role.INCIDENT_COMMANDER)
    incident = declare(client.user)
    response = client.post(reverse("incidents:transition", args=[incident.reference]), {"to": "closed"}, follow=True)
    assert "cannot become" in response.content.decode()
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED


def test_resolve_while_firing_asks_then_records(client_as):
    client = client_as(Role.INCIDENT_COMMANDER)
    incident = services.open_or_update_from_source(
        dedup_key="k", title="DB connections > 80%", severity=2, text="firing"
    )
    services.incident_transition(incident=incident, actor=client.user, to="acknowledged")
    url = reverse("incidents:transition", args=[incident.reference])
    response = client.post(url, {"to": "resolved"})
    assert response.status_code == 200 and b"still firing" in response.content
    assert Incident.objects.get(pk=incident.pk).status == Status.ACKNOWLEDGED
    response = client.post(url, {"to": "resolved", "confirm_firing": "on", "note": "pool resized"})
    assert response.status_code == 302
    assert Incident.objects.get(pk=incident.pk).status == Status.RESOLVED
    assert "confirmed by" in incident.events.filter(kind="status").order_by("-id").first().text


def test_restricted_incident_is_hidden_from_non_participants(client_as, make_user):
    ic = make_user(Role.INCIDENT_COMMANDER)
    incident = declare(ic, "Data breach", 1, restricted=True, commander=ic)
    viewer = client_as(Role.VIEWER)
    url = reverse("incidents:detail", args=[incident.reference])
    assert viewer.get(url).status_code == 404
    assert incident.reference not in viewer.get(reverse("incidents:list")).content.decode()
    assert incident.reference not in viewer.get(reverse("dashboard")).content.decode()
    viewer.force_login(ic)
    assert viewer.get(url).status_code == 200
    viewer.force_login(make_user(Role.MANAGER))
    assert viewer.get(url).status_code == 200


@pytest.mark.parametrize("n", [2, 60])
def test_list_constant_queries_pins_and_breaches(client_as, django_assert_max_num_queries, n):
    client = client_as(Role.VIEWER)
    svc = Service.objects.create(name="Checkout API", slug="checkout-api")
    for i in range(n):
        declare(None, f"minor {i}", 4, services=[svc])
    sev1 = declare(None, "Platform down", 1)
    Incident.objects.filter(pk=sev1.pk).update(
        declared_at=timezone.now() - timedelta(days=2),
        ack_due_at=timezone.now() - timedelta(days=2),
    )
    with django_assert_max_num_queries(10):
        response = client.get(reverse("incidents:list"))
    rows = response.content.decode().split('data-reference="')[1:]
    assert rows[0].startswith(sev1.reference)
    assert 'data-testid="breached"' in rows[0] and 'data-testid="breached"' not in rows[1]


def test_list_filters_and_full_text_search_over_notes(client_as):
    client = client_as(Role.SRE)
    a = declare(client.user, "Queue backlog", 3)
    b = declare(client.user, "Certificate expiry", 2)
    services.incident_add_note(incident=b, actor=client.user, text="cert-manager failed renewing certificates")
    url = reverse("incidents:list")
    body = client.get(url, {"q": "renewing"}).content.decode()
    assert b.reference in body and a.reference not in body
    body = client.get(url, {"q": "backlog"}).content.decode()
    assert a.reference in body and b.reference not in body
    body = client.get(url, {"severity": 2}).content.decode()
    assert b.reference in body and a.reference not in body
    body = client.get(url, {"status": "resolved"}).content.decode()
    assert a.reference not in body


def test_csv_exports(client_as):
    client = client_as(Role.VIEWER)
    incident = declare(None, "Queue backlog, again", 3)
    services.timeline_add_event(incident=incident, kind="note", text='quote " and, comma')
    response = client.get(reverse("incidents:export"))
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][0] == "reference" and rows[1][:2] == [incident.reference, "Queue backlog, again"]
    response = client.get(reverse("incidents:timeline_export", args=[incident.reference]))
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r[4] for r in rows[1:]] == ["declared", "note"] and rows[2][6] == 'quote " and, comma'


def test_dashboard_panel_pins_sev1(client_as, django_assert_max_num_queries):
    client = client_as(Role.VIEWER)
    declare(None, "Minor thing", 4)
    sev1 = declare(None, "Platform down", 1)
    body = client.get(reverse("dashboard")).content.decode()
    panel = body.split('data-testid="dashboard-incidents"')[1]
    assert panel.index(sev1.reference) < panel.index("Minor thing")


def test_severity_table_page_and_edit(client_as):
    client = client_as(Role.MANAGER)
    assert b"Complete outage" in client.get(reverse("incidents:severity_levels")).content
    response = client.post(
        reverse("incidents:severity_level_edit", args=[1]),
        {
            "definition": "Complete outage",
            "examples": "x",
            "ack_target_minutes": 10,
            "resolve_target_minutes": 5,
        },
    )
    assert response.status_code == 200 and b"Cannot be shorter" in response.content


def test_metrics(client_as, django_capture_on_commit_callbacks):
    ic = client_as(Role.INCIDENT_COMMANDER).user
    incident = declare(ic, severity=1)
    declare(ic, severity=3)
    from django.test import Client

    scrape = Client()
    before = scrape.get("/metrics").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        services.incident_transition(incident=incident, actor=ic, to="acknowledged")
        services.incident_transition(incident=incident, actor=ic, to="resolved")
    body = scrape.get("/metrics").content.decode()
    assert 'opsconsole_incidents_open{severity="SEV-3"} 1.0' in body
    assert 'opsconsole_incidents_open{severity="SEV-1"} 0.0' in body

    def count(text, name):
        line = next((x for x in text.splitlines() if x.startswith(name + '_count{severity="SEV-1"}')), None)
        return float(line.split()[-1]) if line else 0.0

    assert (
        count(body, "opsconsole_incident_time_to_acknowledge_seconds")
        == count(before, "opsconsole_incident_time_to_acknowledge_seconds") + 1
    )
    assert (
        count(body, "opsconsole_incident_time_to_resolve_seconds")
        == count(before, "opsconsole_incident_time_to_resolve_seconds") + 1
    )
