from datetime import timedelta

import pytest
from django.utils import timezone

from incidents import services, tasks
from incidents.models import EventKind, Incident, Status
from notifications.models import Delivery
from oncall.models import Rotation, Shift
from opsconsole.roles import Role

from .factories import declare

pytestmark = pytest.mark.django_db


@pytest.fixture
def on_call(make_user):
    sre = make_user(Role.SRE, email="oncall@example.com")
    rotation = Rotation.objects.create(name="Primary")
    now = timezone.now()
    Shift.objects.create(
        rotation=rotation,
        user=sre,
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(hours=8),
    )
    return sre


def test_declare_severity_change_and_resolve_notify(settings, make_user, on_call):
    settings.NOTIFY_WEBHOOK_URL = "http://127.0.0.1:9/hook"
    ic = make_user(Role.INCIDENT_COMMANDER, email="ic@example.com")
    incident = declare(ic, "Checkout down", 2, commander=ic)
    declared = Delivery.objects.filter(event="incident.declared")
    assert {(d.channel, d.target) for d in declared} == {
        ("webhook", "http://127.0.0.1:9/hook"),
        ("email", "oncall@example.com"),
    }
    assert incident.reference in declared.get(channel="webhook").payload["text"]
    services.incident_set_severity(incident=incident, actor=ic, severity=1, reason="all regions")
    assert Delivery.objects.filter(event="incident.severity_changed", channel="email", target="ic@example.com").exists()
    services.incident_transition(incident=incident, actor=ic, to=Status.ACKNOWLEDGED)
    assert not Delivery.objects.filter(event="incident.acknowledged").exists()
    services.incident_transition(incident=incident, actor=ic, to=Status.RESOLVED)
    resolved = Delivery.objects.get(event="incident.resolved", channel="webhook")
    assert "/incidents/" + incident.reference in resolved.payload["text"]


def test_alert_opened_incident_adds_the_on_call_sre_who_may_then_acknowledge(on_call):
    incident = services.open_or_update_from_source(dedup_key="g", title="Queue backlog", severity=3, text="x")
    assert list(incident.responders.all()) == [on_call]
    services.incident_transition(incident=Incident.objects.get(pk=incident.pk), actor=on_call, to=Status.ACKNOWLEDGED)


def test_quiet_acknowledged_incident_reminds_its_commander_once_per_quiet_period(settings, make_user):
    settings.INCIDENT_NUDGE_MINUTES = 30
    ic = make_user(Role.INCIDENT_COMMANDER, email="ic@example.com")
    incident = declare(ic, commander=ic)
    services.incident_transition(incident=incident, actor=ic, to=Status.ACKNOWLEDGED)
    later = timezone.now() + timedelta(minutes=31)
    assert services.send_nudges(now=timezone.now()) == {"commander": 0, "on_call": 0}
    assert services.send_nudges(now=later) == {"commander": 1, "on_call": 0}
    assert services.send_nudges(now=later + timedelta(minutes=40)) == {"commander": 0, "on_call": 0}
    nudge = Delivery.objects.get(event="incident.nudge")
    assert nudge.target == "ic@example.com" and nudge.channel == "email"
    event = incident.events.order_by("-id").first()
    assert event.kind == EventKind.NUDGE and event.data["to"] == ic.username
    # New activity starts a new quiet period: one more reminder after it.
    services.incident_add_note(incident=incident, actor=ic, text="still digging")
    assert services.send_nudges(now=timezone.now() + timedelta(minutes=31)) == {
        "commander": 1,
        "on_call": 0,
    }


def test_incident_without_commander_reminds_on_call(settings, on_call):
    settings.INCIDENT_NUDGE_MINUTES = 10
    incident = declare(None, "Unowned", 3)
    soon = timezone.now() + timedelta(minutes=11)
    assert tasks.send_nudges.delay().get() == {"commander": 0, "on_call": 0}
    assert services.send_nudges(now=soon) == {"commander": 0, "on_call": 1}
    assert services.send_nudges(now=soon + timedelta(minutes=1)) == {"commander": 0, "on_call": 0}
    assert Delivery.objects.filter(event="incident.nudge", target="oncall@example.com").count() == 1
    assert services.send_nudges(now=soon + timedelta(minutes=11)) == {"commander": 0, "on_call": 1}
    services.incident_set_roles(incident=incident, actor=make_commander(incident), commander=on_call)
    assert services.send_nudges(now=soon + timedelta(minutes=30)) == {"commander": 0, "on_call": 0}


def make_commander(incident):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user(username="boss")
    user.groups.add(Group.objects.get(name=Role.MANAGER.value))
    return user
