import datetime
import zoneinfo

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from checklists.models import ChecklistTemplate, Schedule
from healthchecks.models import Check, MaintenanceWindow
from incidents import services as incidents
from incidents.models import Status
from oncall import handoffs
from oncall.handoff_export import to_markdown
from oncall.models import Handoff, HandoffMessage, Rotation
from opsconsole.models import AuditEntry, Service
from opsconsole.roles import Role
from tests.oncall.factories import shift

# The suite-wide SEV-table fixture needs database access before fixtures that ask for `db`.
pytestmark = pytest.mark.django_db

H = datetime.timedelta(hours=1)


@pytest.fixture
def world(db, make_user):
    api = Service.objects.create(name="API", slug="api")
    rotation = Rotation.objects.create(name="Primary SRE")
    out = make_user(Role.SRE, username="olga", first_name="Olga")
    inc = make_user(Role.SRE, username="ivan", first_name="Ivan")
    shift(rotation, out, -11, 1)
    shift(rotation, inc, 1, 13)
    Check.objects.create(name="API health", service=api, kind="http", state=Check.State.CRITICAL)
    Check.objects.create(name="DB health", service=api, kind="tcp", state=Check.State.OK)
    sev2 = incidents.incident_declare(actor=out, title="Slow checkout", severity=2, services=[api])
    secret = incidents.incident_declare(actor=out, title="Data breach", severity=1, restricted=True)
    now = timezone.now()
    MaintenanceWindow.objects.create(service=api, starts_at=now + 3 * H, ends_at=now + 4 * H, reason="DB upgrade")
    template = ChecklistTemplate.objects.create(name="Evening checklist")
    Schedule.objects.create(
        template=template,
        time_of_day=(now + 2 * H).time().replace(second=0, microsecond=0),
        days_of_week="0123456",
        timezone="UTC",
    )
    return {"rotation": rotation, "out": out, "in": inc, "sev2": sev2, "secret": secret}


def test_prefill_follows_the_seed_template(world):
    draft = handoffs.prefill(rotation=world["rotation"], outgoing=world["out"])

    assert draft.incoming == world["in"]
    assert [c["name"] for c in draft.system_status["checks"]] == ["API health"]
    assert draft.system_status["all_healthy"] is False and draft.system_status["no_incidents"] is False
    titles = [item.title for item in draft.items]
    assert titles == [f"{world['sev2'].reference} Slow checkout"]  # the restricted incident never appears
    assert draft.items[0].severity == "SEV-2" and draft.items[0].status == "Triggered"
    tasks = [row["task"] for row in draft.scheduled]
    assert "Maintenance: DB upgrade" in tasks and "Checklist: Evening checklist" in tasks
    assert draft.period_end - draft.period_start <= 12 * H


def test_scheduled_tasks_are_in_time_order_across_timezones_and_shown_in_the_readers(world, client):
    singapore = zoneinfo.ZoneInfo("Asia/Singapore")
    soon = (timezone.now() + H).astimezone(singapore).replace(second=0, microsecond=0)
    template = ChecklistTemplate.objects.create(name="Singapore checklist")
    Schedule.objects.create(
        template=template, time_of_day=soon.time(), days_of_week="0123456", timezone="Asia/Singapore"
    )

    draft = handoffs.prefill(rotation=world["rotation"], outgoing=world["out"])
    tasks = [row["task"] for row in draft.scheduled]
    # In an hour (Singapore) before the UTC evening checklist in two: by time, not by the text of a +08:00 offset.
    assert tasks.index("Checklist: Singapore checklist") < tasks.index("Checklist: Evening checklist")

    world["out"].timezone = "America/New_York"
    world["out"].save(update_fields=["timezone"])
    client.force_login(world["out"])
    body = client.get(reverse("oncall:handoff_new") + f"?rotation={world['rotation'].pk}").content.decode()
    shown = soon.astimezone(zoneinfo.ZoneInfo("America/New_York"))
    assert f"<td>Checklist: Singapore checklist</td><td>{shown:%a} {shown.day} {shown:%b %H:%M}</td>" in body


def test_open_items_carry_over_until_closed(world, make_user):
    rotation, out, inc = world["rotation"], world["out"], world["in"]
    first = handoffs.handoff_submit(
        actor=out,
        rotation=rotation,
        incoming=inc,
        notes={f"i{world['sev2'].pk}": "Rolled back 4.2; watching p95"},
        closed=set(),
        new_items=["Disk on db-2 at 81%", ""],
        recent_changes="Deployed 4.2 then rolled back",
        known_issues="Flaky TLS probe",
    )
    assert [i.title for i in first.items.all()] == [f"{world['sev2'].reference} Slow checkout", "Disk on db-2 at 81%"]
    assert AuditEntry.objects.filter(action="oncall.handoff_submit").exists()

    incidents.incident_transition(incident=world["sev2"], actor=make_user(Role.ADMIN), to=Status.ACKNOWLEDGED)
    draft = handoffs.prefill(rotation=rotation, outgoing=inc)
    carried = {item.title: item for item in draft.items}
    assert set(carried) == {f"{world['sev2'].reference} Slow checkout", "Disk on db-2 at 81%"}
    assert carried[f"{world['sev2'].reference} Slow checkout"].notes == "Rolled back 4.2; watching p95"
    assert carried[f"{world['sev2'].reference} Slow checkout"].status == "Acknowledged"  # refreshed

    disk_key = carried["Disk on db-2 at 81%"].key
    handoffs.handoff_submit(
        actor=inc,
        rotation=rotation,
        incoming=out,
        notes={},
        closed={disk_key},
        new_items=[],
        recent_changes="",
        known_issues="",
    )
    third = handoffs.prefill(rotation=rotation, outgoing=out)
    assert [item.title for item in third.items] == [f"{world['sev2'].reference} Slow checkout"]


def test_only_the_incoming_engineer_confirms_once(world, make_user):
    handoff = handoffs.handoff_submit(
        actor=world["out"],
        rotation=world["rotation"],
        incoming=world["in"],
        notes={},
        closed=set(),
        new_items=[],
        recent_changes="",
        known_issues="",
    )
    with pytest.raises(PermissionDenied):
        handoffs.handoff_acknowledge(actor=world["out"], handoff=handoff, confirmations=[])
    with pytest.raises(PermissionDenied):
        handoffs.handoff_acknowledge(actor=make_user(Role.SRE), handoff=handoff, confirmations=[])
    handoffs.handoff_ask(actor=world["in"], handoff=handoff, question="Is db-2 being cleaned up?")
    handoff.refresh_from_db()
    assert handoff.status == "questioned" and handoff.questioned_at is not None
    done = handoffs.handoff_acknowledge(actor=world["in"], handoff=handoff, confirmations=["briefed", "bogus"])
    assert done.status == "acknowledged" and done.confirmations == ["briefed"] and done.acknowledged_by == world["in"]
    with pytest.raises(ValidationError):
        handoffs.handoff_acknowledge(actor=world["in"], handoff=handoff, confirmations=[])


def test_markdown_export_uses_the_seed_layout(world):
    handoff = handoffs.handoff_submit(
        actor=world["out"],
        rotation=world["rotation"],
        incoming=world["in"],
        notes={f"i{world['sev2'].pk}": "p95 | 2 s"},
        closed=set(),
        new_items=[],
        recent_changes="Deployed 4.2",
        known_issues="Flaky TLS probe",
    )
    text = to_markdown(Handoff.objects.get(pk=handoff.pk))
    assert text.startswith("## On-Call Handoff\n\n**From**: Olga | **To**: Ivan\n**Period**: ")
    for heading in (
        "### System Status",
        "### Outstanding Issues",
        "### Scheduled Tasks",
        "### Recent Changes",
        "### Known Issues to Watch",
        "### Handoff Confirmed",
    ):
        assert heading in text
    assert "- [ ] All services healthy" in text and "CRITICAL: API health (API)" in text
    assert f"| {world['sev2'].reference} Slow checkout | SEV-2 | Triggered | p95 \\| 2 s |" in text
    assert "Data breach" not in text and "- Deployed 4.2" in text


def test_pages_flow_and_dashboard_flag(world, client, settings, django_assert_max_num_queries):
    client.force_login(world["out"])
    page = client.get(reverse("oncall:handoff_new") + f"?rotation={world['rotation'].pk}")
    assert page.status_code == 200 and "Slow checkout" in page.content.decode()
    key = f"i{world['sev2'].pk}"
    response = client.post(
        reverse("oncall:handoff_new"),
        {"rotation": world["rotation"].pk, f"notes_{key}": "watching", "recent_changes": "x", "no_deployments": "on"},
    )
    handoff = Handoff.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("oncall:handoff_detail", args=[handoff.pk])
    assert handoff.incoming == world["in"] and handoff.items.get().notes == "watching"

    settings.ONCALL_HANDOFF_ACK_MINUTES = 1
    Handoff.objects.filter(pk=handoff.pk).update(submitted_at=timezone.now() - 5 * datetime.timedelta(minutes=1))
    with django_assert_max_num_queries(40):
        dashboard = client.get(reverse("dashboard")).content.decode()
    assert 'data-testid="handoff-panel"' in dashboard and "not acknowledged" in dashboard
    assert "opsconsole_oncall_handoffs_unacknowledged 1.0" in client.get(reverse("metrics")).content.decode()

    client.force_login(world["in"])
    bad = client.post(reverse("oncall:handoff_answer", args=[handoff.pk]), {"action": "question", "question": " "})
    assert bad.status_code == 200 and "Write the question" in bad.content.decode()
    ok = client.post(
        reverse("oncall:handoff_answer", args=[handoff.pk]), {"action": "acknowledge", "confirmations": ["access"]}
    )
    assert ok.status_code == 302
    assert "confirmed" in client.get(reverse("dashboard")).content.decode()
    md = client.get(reverse("oncall:handoff_markdown", args=[handoff.pk]))
    assert md["Content-Type"].startswith("text/markdown") and b"- [x] Access verified" in md.content
    history = client.get(reverse("oncall:handoffs") + f"?rotation={world['rotation'].pk}").content.decode()
    assert "Olga" in history and "Handoff confirmed" in history


def test_viewers_cannot_write_or_answer(world, client_as):
    client = client_as(Role.VIEWER)
    assert client.get(reverse("oncall:handoff_new")).status_code == 403
    handoff = handoffs.handoff_submit(
        actor=world["out"],
        rotation=world["rotation"],
        incoming=None,
        notes={},
        closed=set(),
        new_items=[],
        recent_changes="",
        known_issues="",
    )
    assert (
        client.post(reverse("oncall:handoff_answer", args=[handoff.pk]), {"action": "acknowledge"}).status_code == 403
    )
    assert Handoff.objects.get().status == "submitted"


def _submitted(world):
    return handoffs.handoff_submit(
        actor=world["out"],
        rotation=world["rotation"],
        incoming=world["in"],
        notes={},
        closed=set(),
        new_items=[],
        recent_changes="",
        known_issues="",
    )


def test_the_outgoing_engineer_answers_the_question_in_the_app(world, client, make_user):
    from notifications.models import Delivery

    world["out"].email, world["in"].email = "olga@example.com", "ivan@example.com"
    world["out"].save()
    world["in"].save()
    handoff = _submitted(world)
    client.force_login(world["in"])
    asked = client.post(
        reverse("oncall:handoff_answer", args=[handoff.pk]), {"action": "question", "question": "Is db-2 cleaned?"}
    )
    assert asked.status_code == 302
    # The outgoing engineer is told, and sees the question with a place to answer.
    assert Delivery.objects.filter(event="oncall.handoff_thread", target="olga@example.com").count() == 1
    client.force_login(world["out"])
    page = client.get(reverse("oncall:handoff_detail", args=[handoff.pk])).content.decode()
    assert 'data-testid="handoff-question"' in page and "Is db-2 cleaned?" in page
    assert 'data-testid="handoff-reply"' in page

    blank = client.post(reverse("oncall:handoff_reply", args=[handoff.pk]), {"answer": "   "})
    assert blank.status_code == 200 and "Write the answer." in blank.content.decode()
    assert HandoffMessage.objects.filter(kind="answer").count() == 0

    answered = client.post(reverse("oncall:handoff_reply", args=[handoff.pk]), {"answer": "Yes, at 18:00."})
    assert answered.status_code == 302
    answer = HandoffMessage.objects.get(kind="answer")
    assert answer.author == world["out"] and answer.created_at is not None
    handoff.refresh_from_db()
    assert handoff.status == "answered"
    assert AuditEntry.objects.filter(action="oncall.handoff_answer", target_id=str(handoff.pk)).count() == 1
    assert Delivery.objects.filter(event="oncall.handoff_thread", target="ivan@example.com").count() == 1
    # No open question any more: a second answer is refused, nothing written.
    again = client.post(reverse("oncall:handoff_reply", args=[handoff.pk]), {"answer": "Also…"})
    assert again.status_code == 200 and "no open question" in again.content.decode()
    assert HandoffMessage.objects.filter(kind="answer").count() == 1

    # The incoming engineer reads the thread in order, and may still confirm.
    client.force_login(world["in"])
    page = client.get(reverse("oncall:handoff_detail", args=[handoff.pk])).content.decode()
    assert page.index("Is db-2 cleaned?") < page.index("Yes, at 18:00.")
    assert 'data-testid="handoff-reply"' not in page and 'data-testid="handoff-answer"' in page
    assert "Answer from Olga" in to_markdown(Handoff.objects.get(pk=handoff.pk), "UTC")
    client.post(reverse("oncall:handoff_answer", args=[handoff.pk]), {"action": "acknowledge"})
    assert Handoff.objects.get(pk=handoff.pk).status == "acknowledged"


@pytest.mark.parametrize(
    "who, allowed",
    [
        ("outgoing", True),
        ("manager", True),
        ("admin", True),
        ("incoming", False),  # the one who asked does not answer themselves
        ("other_sre", False),
        ("commander", False),
        ("viewer", False),
    ],
)
def test_who_may_answer_a_handoff_question(world, make_user, client, who, allowed):
    handoff = _submitted(world)
    handoffs.handoff_ask(actor=world["in"], handoff=handoff, question="Why is db-2 at 90%?")
    people = {
        "outgoing": world["out"],
        "incoming": world["in"],
        "manager": make_user(Role.MANAGER),
        "admin": make_user(Role.ADMIN),
        "other_sre": make_user(Role.SRE),
        "commander": make_user(Role.INCIDENT_COMMANDER),
        "viewer": make_user(Role.VIEWER),
    }
    # The page offers the answer form by the same rule the service enforces.
    assert handoffs.may_reply(people[who], Handoff.objects.get(pk=handoff.pk)) is allowed
    client.force_login(people[who])
    response = client.post(reverse("oncall:handoff_reply", args=[handoff.pk]), {"answer": "Log rotation."})
    assert response.status_code == (302 if allowed else 403)
    assert HandoffMessage.objects.filter(kind="answer").count() == (1 if allowed else 0)
    assert Handoff.objects.get(pk=handoff.pk).status == ("answered" if allowed else "questioned")


def test_the_evening_checklist_link_opens_a_handoff_for_the_rotation_on_call_now(world, client, make_user):
    """The link carries no rotation: the page picks the one the person is on call
    for now (olga in Primary SRE, dana in Database — listed first), prefilled."""
    database = Rotation.objects.create(name="A Database")
    dana = make_user(Role.SRE, username="dana")
    shift(database, dana, -1, 5)
    # (The link itself is on the checklist run page: tests/checklists/test_views.py.)
    client.force_login(world["out"])
    page = client.get(reverse("oncall:handoff_new"))
    html = page.content.decode()
    assert page.status_code == 200 and 'data-testid="handoff-form"' in html
    assert "Primary SRE" in html and "A Database" not in html
    assert "Slow checkout" in html and "Data breach" not in html
    client.force_login(dana)
    html = client.get(reverse("oncall:handoff_new")).content.decode()
    assert "A Database" in html and "Primary SRE" not in html
