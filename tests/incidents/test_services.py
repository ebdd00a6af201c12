import threading
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone

from incidents import services
from incidents.models import EventKind, EventStar, Incident, SeverityLevel, Status, TimelineEvent
from opsconsole.models import AuditEntry, Service
from opsconsole.roles import Role

from .factories import declare

pytestmark = pytest.mark.django_db


def test_declare_with_title_and_sev_only(make_user):
    sre = make_user(Role.SRE)
    incident = declare(sre, "Payments failing", 2)
    today = timezone.now().strftime("%Y-%m-%d")
    assert incident.reference == f"INC-{today}-001"
    assert incident.status == Status.TRIGGERED
    level = SeverityLevel.objects.get(pk=2)
    assert incident.ack_due_at == incident.declared_at + timedelta(minutes=level.ack_target_minutes)
    event = incident.events.get()
    assert event.kind == EventKind.DECLARED and event.author == sre
    assert AuditEntry.objects.filter(action="incident.declare", target_id=str(incident.pk)).exists()
    assert declare(sre, "Second").reference == f"INC-{today}-002"


def test_viewer_cannot_declare(make_user):
    with pytest.raises(PermissionDenied):
        declare(make_user(Role.VIEWER))


def test_unknown_severity_is_refused(make_user):
    with pytest.raises(ValidationError):
        declare(make_user(Role.SRE), severity=7)
    assert not Incident.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_declares_get_distinct_references(make_user):
    """Eight threads declare at once on separate connections: eight different numbers."""
    sre = make_user(Role.SRE)
    services.ensure_defaults()
    barrier = threading.Barrier(8)
    refs, errors = [], []

    def worker():
        try:
            barrier.wait()
            refs.append(declare(sre, "Race").reference)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(refs)) == 8
    assert sorted(int(r.rsplit("-", 1)[1]) for r in refs) == list(range(1, 9))


def test_status_machine_and_phase_timestamps(make_user):
    ic = make_user(Role.INCIDENT_COMMANDER)
    # SEV-3: no required post-incident review holds the close back (see test_reviews_lifecycle).
    incident = declare(ic, severity=3)
    for to in (Status.ACKNOWLEDGED, Status.MITIGATED, Status.RESOLVED, Status.CLOSED):
        incident = services.incident_transition(incident=incident, actor=ic, to=to)
    assert incident.acknowledged_at <= incident.mitigated_at <= incident.resolved_at <= incident.closed_at
    kinds = list(incident.events.order_by("id").values_list("kind", "data__to"))
    assert kinds == [
        ("declared", None),
        ("status", "acknowledged"),
        ("role", None),  # nobody commanded it: the acknowledger took command
        ("status", "mitigated"),
        ("status", "resolved"),
        ("status", "closed"),
    ]


def test_disallowed_transition_is_refused_with_a_message(make_user):
    ic = make_user(Role.INCIDENT_COMMANDER)
    incident = declare(ic)
    with pytest.raises(services.TransitionRefused, match="Allowed next: Acknowledged"):
        services.incident_transition(incident=incident, actor=ic, to=Status.MITIGATED)
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED and incident.events.count() == 1


def test_second_acknowledge_is_refused(make_user):
    ic = make_user(Role.INCIDENT_COMMANDER)
    incident = declare(ic)
    services.incident_transition(incident=incident, actor=ic, to=Status.ACKNOWLEDGED)
    with pytest.raises(services.TransitionRefused):
        services.incident_transition(incident=incident, actor=ic, to=Status.ACKNOWLEDGED)


def test_acknowledging_an_incident_without_commander_takes_command(make_user):
    ic, other = make_user(Role.INCIDENT_COMMANDER), make_user(Role.INCIDENT_COMMANDER)
    incident = declare(ic)
    assert incident.commander is None
    incident = services.incident_transition(incident=incident, actor=other, to=Status.ACKNOWLEDGED)
    assert Incident.objects.get(pk=incident.pk).commander == other
    role_event = incident.events.get(kind=EventKind.ROLE)
    assert role_event.author == other and f"Commander: **{other}**" in role_event.text
    assert role_event.data["commander"] == other.pk
    entry = AuditEntry.objects.filter(action="incident.transition", target_id=str(incident.pk)).get()
    assert entry.before["commander_id"] is None and entry.after["commander_id"] == other.pk


def test_acknowledging_keeps_an_existing_commander(make_user):
    ic, other = make_user(Role.INCIDENT_COMMANDER), make_user(Role.INCIDENT_COMMANDER)
    incident = declare(ic, commander=ic)
    services.incident_transition(incident=incident, actor=other, to=Status.ACKNOWLEDGED)
    assert Incident.objects.get(pk=incident.pk).commander == ic
    assert not incident.events.filter(kind=EventKind.ROLE).exists()


def test_reopen_is_an_explicit_event(make_user):
    ic = make_user(Role.INCIDENT_COMMANDER)
    incident = declare(ic)
    for to in (Status.ACKNOWLEDGED, Status.RESOLVED):
        incident = services.incident_transition(incident=incident, actor=ic, to=to)
    incident = services.incident_reopen(incident=incident, actor=ic, reason="errors are back")
    assert incident.status == Status.ACKNOWLEDGED and incident.resolved_at is None
    assert incident.reopen_count == 1
    last = incident.events.order_by("-id").first()
    assert last.data["reopen"] is True and "errors are back" in last.text
    with pytest.raises(services.TransitionRefused):
        services.incident_reopen(incident=incident, actor=ic, reason="again")


def test_sre_manages_only_incidents_assigned_to_them(make_user):
    sre, other = make_user(Role.SRE), make_user(Role.SRE)
    incident = declare(sre, commander=sre)
    with pytest.raises(PermissionDenied):
        services.incident_transition(incident=incident, actor=other, to=Status.ACKNOWLEDGED)
    with pytest.raises(PermissionDenied):
        services.incident_set_severity(incident=incident, actor=other, severity=1)
    services.incident_set_roles(incident=incident, actor=sre, commander=sre, responders=[other])
    services.incident_transition(incident=incident, actor=other, to=Status.ACKNOWLEDGED)
    assert Incident.objects.get(pk=incident.pk).status == Status.ACKNOWLEDGED


def test_severity_change_moves_deadlines_and_is_on_timeline(make_user):
    ic = make_user(Role.INCIDENT_COMMANDER)
    incident = declare(ic, severity=3)
    incident = services.incident_set_severity(incident=incident, actor=ic, severity=1, reason="all regions")
    assert incident.ack_due_at == incident.declared_at + timedelta(minutes=15)
    event = incident.events.order_by("-id").first()
    assert event.kind == EventKind.SEVERITY and event.data == {"from": 3, "to": 1}


def test_note_markdown_is_sanitised_and_backdating_kept(make_user):
    sre = make_user(Role.SRE)
    incident = declare(sre)
    earlier = timezone.now() - timedelta(minutes=20)
    event = services.incident_add_note(
        incident=incident,
        actor=sre,
        occurred_at=earlier,
        text="**Root cause** <script>alert(1)</script> [x](javascript:alert(1)) <img src=x onerror=alert(1)>",
    )
    assert "<strong>Root cause</strong>" in event.html
    assert "<script" not in event.html and "javascript:" not in event.html and "<img" not in event.html
    assert event.occurred_at == earlier and event.recorded_at > earlier and event.backdated
    with pytest.raises(ValidationError):
        services.incident_add_note(
            incident=incident, actor=sre, text="x", occurred_at=timezone.now() + timedelta(hours=1)
        )


def test_correction_points_at_the_corrected_event(make_user):
    sre = make_user(Role.SRE)
    incident = declare(sre)
    wrong = services.incident_add_note(incident=incident, actor=sre, text="DB at 100% CPU")
    fix = services.incident_add_note(incident=incident, actor=sre, text="Was the replica", corrects=wrong)
    assert fix.corrects == wrong
    other = declare(sre, "other")
    with pytest.raises(ValidationError):
        services.incident_add_note(incident=other, actor=sre, text="x", corrects=wrong)


def test_timeline_add_event_contract(make_user):
    incident = declare(make_user(Role.SRE))
    event = services.timeline_add_event(incident=incident, kind="runbook", text="Step 2 done", data={"step": 2})
    assert event.kind == "runbook" and event.author is None and event.data == {"step": 2}
    with pytest.raises(ValueError):
        services.timeline_add_event(incident=incident, kind="bogus", text="x")


def test_star_is_idempotent_and_leaves_event_untouched(make_user):
    sre = make_user(Role.SRE)
    incident = declare(sre)
    event = incident.events.get()
    services.event_set_star(event=event, actor=sre, starred=True)
    services.event_set_star(event=event, actor=sre, starred=True)
    assert AuditEntry.objects.filter(action="incident.event_star").count() == 1
    services.event_set_star(event=event, actor=sre, starred=False)
    assert not EventStar.objects.filter(event=event).exists()
    assert TimelineEvent.objects.get(pk=event.pk).text == event.text


def test_open_or_update_from_source_dedups_by_key():
    services.ensure_defaults()
    Service.objects.create(name="Message queue", slug="message-queue")
    first = services.open_or_update_from_source(
        dedup_key="g1",
        title="Queue backlog",
        severity=3,
        services=["message-queue"],
        text="queue > 5000",
    )
    again = services.open_or_update_from_source(dedup_key="g1", title="Queue backlog", severity=3, text="queue > 8000")
    assert first.pk == again.pk and Incident.objects.count() == 1
    assert list(first.services.values_list("slug", flat=True)) == ["message-queue"]
    assert first.source_kind == "alert" and first.dedup_key == "g1"
    done = services.open_or_update_from_source(
        dedup_key="g1", title="Queue backlog", severity=3, text="queue drained", resolved=True
    )
    assert done.pk == first.pk
    kinds = list(first.events.order_by("id").values_list("kind", "data__resolved"))
    assert kinds == [("declared", None), ("alert", False), ("alert", False), ("alert", True)]
    assert services.open_or_update_from_source(dedup_key="nope", title="x", severity=3, text="", resolved=True) is None


def test_resolving_while_alerts_fire_needs_confirmation(make_user):
    ic = make_user(Role.INCIDENT_COMMANDER)
    incident = services.open_or_update_from_source(
        dedup_key="g2", title="DB connections", severity=2, text="90% of max"
    )
    services.incident_transition(incident=incident, actor=ic, to=Status.ACKNOWLEDGED)
    with pytest.raises(services.ConfirmationRequired) as info:
        services.incident_transition(incident=incident, actor=ic, to=Status.RESOLVED)
    assert [s.key for s in info.value.firing] == ["g2"]
    incident = services.incident_transition(incident=incident, actor=ic, to=Status.RESOLVED, confirm_firing=True)
    # (a SEV-2's resolve also notes its new post-incident review on the timeline)
    last = incident.events.filter(kind="status").order_by("-id").first()
    assert "still firing" in last.text and last.data["confirmed_firing"] == ["g2"]


def test_new_incident_after_the_previous_one_for_the_key_resolved(make_user):
    ic = make_user(Role.INCIDENT_COMMANDER)
    first = services.open_or_update_from_source(dedup_key="g3", title="Cert", severity=3, text="expiring")
    services.open_or_update_from_source(dedup_key="g3", title="Cert", severity=3, text="ok", resolved=True)
    for to in (Status.ACKNOWLEDGED, Status.RESOLVED):
        services.incident_transition(incident=first, actor=ic, to=to)
    second = services.open_or_update_from_source(dedup_key="g3", title="Cert", severity=3, text="again")
    assert second.pk != first.pk
    with pytest.raises(services.TransitionRefused, match="same alert group"):
        services.incident_reopen(incident=first, actor=ic, reason="same thing")


def test_severity_table_edit_moves_open_deadlines(make_user):
    manager = make_user(Role.MANAGER)
    incident = declare(manager, severity=2)
    level = SeverityLevel.objects.get(pk=2)
    services.severity_level_update(
        actor=manager,
        level=level,
        definition="Major degradation",
        examples="x",
        ack_target_minutes=20,
        resolve_target_minutes=300,
    )
    incident.refresh_from_db()
    assert incident.ack_due_at == incident.declared_at + timedelta(minutes=20)
    with pytest.raises(PermissionDenied):
        services.severity_level_update(
            actor=make_user(Role.INCIDENT_COMMANDER),
            level=level,
            definition="x",
            examples="",
            ack_target_minutes=5,
            resolve_target_minutes=10,
        )


def test_repeated_identical_source_call_adds_nothing_but_flaps_are_recorded():
    services.ensure_defaults()
    call = dict(
        dedup_key="check:7",
        title="Check failing",
        severity=2,
        text="critical",
        source_kind="check",
        data={"check_id": 7, "from": "ok", "to": "critical"},
    )
    first = services.open_or_update_from_source(**call)
    again = services.open_or_update_from_source(**call)
    assert first.pk == again.pk
    assert list(first.events.values_list("kind", flat=True).order_by("id")) == ["declared", "check"]
    services.open_or_update_from_source(**{**call, "resolved": True, "data": {"check_id": 7, "to": "ok"}})
    services.open_or_update_from_source(**call)
    assert first.events.filter(kind="check").count() == 3
