"""The escalation clock, on a frozen clock (time-machine)."""

import datetime

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from incidents import services as incidents
from incidents.models import EventKind, Status, TimelineEvent
from notifications.models import Delivery
from oncall import escalation
from oncall.models import EscalationPolicy, EscalationStep, IncidentEscalation
from oncall.tasks import escalate_due
from opsconsole.models import AuditEntry
from opsconsole.roles import Role
from tests.oncall.factories import policy_post, seed_policy

# The suite-wide SEV-table fixture needs database access before fixtures that ask for `db`.
pytestmark = pytest.mark.django_db

UTC = datetime.UTC
T0 = datetime.datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
MIN = datetime.timedelta(minutes=1)


@pytest.fixture
def ladder(db, make_user):
    return seed_policy(make_user)


def _declare(ladder, **kwargs):
    return incidents.incident_declare(
        actor=ladder["declarer"], title="API down", severity=1, services=[ladder["service"]], **kwargs
    )


def _steps(incident) -> list[tuple]:
    return list(
        EscalationStep.objects.filter(escalation__incident=incident)
        .order_by("position")
        .values_list("position", "recipients", "late")
    )


def test_declaring_pages_level_one_at_once(ladder):
    with time_machine.travel(T0, tick=False):
        incident = _declare(ladder)

    assert _steps(incident) == [(1, ["oncall-ana"], False)]
    event = TimelineEvent.objects.get(incident=incident, kind=EventKind.ESCALATION)
    assert "L1 On-call engineer" in event.text and "Ana" in event.text
    paged = Delivery.objects.filter(event="incident.escalated")
    assert sorted(paged.values_list("channel", "target")) == [("email", "ana@example.com")]
    state = IncidentEscalation.objects.get(incident=incident)
    assert (state.current_position, state.next_due_at) == (1, T0 + 15 * MIN)


def test_declaring_tells_each_person_once_the_page_not_also_the_announcement(ladder, make_user):
    """Ana is on call (the announcement's audience) and paged as L1: she gets
    the page only. The channel gets one message, the announcement, naming the
    page. Someone on call in another rotation of the service still gets the
    announcement."""
    from oncall.models import Rotation
    from tests.oncall.factories import shift

    other = Rotation.objects.create(name="API backup")
    other.services.add(ladder["service"])
    ladder["rotation"].services.add(ladder["service"])
    bob = make_user(Role.SRE, username="bob", email="bob@example.com")
    with time_machine.travel(T0, tick=False):
        shift(other, bob, -1, 5)
        _declare(ladder)
    to_ana = list(Delivery.objects.filter(target="ana@example.com").values_list("event", flat=True))
    assert to_ana == ["incident.escalated"]
    assert list(Delivery.objects.filter(target="bob@example.com").values_list("event", flat=True)) == [
        "incident.declared"
    ]
    hooks = Delivery.objects.filter(channel="webhook")
    assert list(hooks.values_list("event", flat=True)) == ["incident.declared"]
    assert "Paging L1 On-call engineer: oncall-ana." in hooks.get().payload["text"]


def test_without_a_policy_the_announcement_still_reaches_the_on_call(ladder):
    from opsconsole.models import Service

    ladder["rotation"].services.add(ladder["service"])
    ladder["policy"].delete()
    billing = Service.objects.create(name="Billing", slug="billing")
    ladder["rotation"].services.add(billing)
    incidents.incident_declare(actor=ladder["declarer"], title="x", severity=2, services=[billing])
    assert list(Delivery.objects.filter(target="ana@example.com").values_list("event", flat=True)) == [
        "incident.declared"
    ]


def test_each_level_is_paged_when_its_wait_is_over_and_not_before(ladder):
    with time_machine.travel(T0, tick=False):
        incident = _declare(ladder)
    for minutes, expected_levels in [(14, 1), (15, 2), (44, 2), (45, 3), (104, 3), (105, 4), (600, 4)]:
        with time_machine.travel(T0 + minutes * MIN, tick=False):
            escalate_due.delay()
        assert len(_steps(incident)) == expected_levels, minutes
    assert [r for _p, r, _l in _steps(incident)] == [["oncall-ana"], ["lead"], ["cto"], ["ceo"]]
    assert all(not late for *_x, late in _steps(incident))
    state = IncidentEscalation.objects.get(incident=incident)
    assert state.stopped_reason == "exhausted" and state.next_due_at is None
    assert Delivery.objects.filter(event="incident.escalated", channel="email").count() == 4
    assert AuditEntry.objects.filter(action="oncall.escalate").count() == 4


def test_acknowledging_stops_the_escalation(ladder):
    with time_machine.travel(T0, tick=False):
        incident = _declare(ladder)
    with time_machine.travel(T0 + 10 * MIN, tick=False):
        incidents.incident_transition(incident=incident, actor=ladder["commander"], to=Status.ACKNOWLEDGED)
    with time_machine.travel(T0 + 3 * 60 * MIN, tick=False):
        assert escalation.escalate_due() == {"paged": 0, "late": 0}
    assert len(_steps(incident)) == 1
    state = IncidentEscalation.objects.get(incident=incident)
    assert state.stopped_reason == "acknowledged" and state.stopped_at == T0 + 10 * MIN
    texts = list(
        TimelineEvent.objects.filter(incident=incident, kind=EventKind.ESCALATION).values_list("text", flat=True)
    )
    assert any("Escalation stopped: acknowledged" in t for t in texts)


def test_after_beat_was_down_every_missed_level_is_paged_once_and_marked_late(ladder):
    with time_machine.travel(T0, tick=False):
        incident = _declare(ladder)
    with time_machine.travel(T0 + 50 * MIN, tick=False):  # beat was down: L2 (15′) and L3 (45′) are due
        assert escalation.escalate_due() == {"paged": 2, "late": 2}
        assert escalation.escalate_due() == {"paged": 0, "late": 0}
    assert _steps(incident) == [(1, ["oncall-ana"], False), (2, ["lead"], True), (3, ["cto"], True)]
    # The ladder keeps its times: L4 is due 60 min after L3 was *due* (45′), not after it was sent.
    assert IncidentEscalation.objects.get(incident=incident).next_due_at == T0 + 105 * MIN
    late = TimelineEvent.objects.filter(incident=incident, kind=EventKind.ESCALATION, text__contains="late by")
    assert late.count() == 2


def test_an_alert_starts_the_policy_of_its_service(ladder):
    with time_machine.travel(T0, tick=False):
        incident = incidents.open_or_update_from_source(
            dedup_key="alertmanager:api-down",
            title="APIDown",
            severity=1,
            services=[ladder["service"].slug],
            text="api is down",
            source_kind="alert",
        )
    assert _steps(incident) == [(1, ["oncall-ana"], False)]


def test_incidents_of_services_without_a_policy_use_the_default_or_none(ladder, make_user):
    from opsconsole.models import Service

    other = Service.objects.create(name="Billing", slug="billing")
    incident = incidents.incident_declare(actor=ladder["declarer"], title="x", severity=2, services=[other])
    assert not IncidentEscalation.objects.filter(incident=incident).exists()
    ladder["policy"].is_default = True
    ladder["policy"].save()
    incident = incidents.incident_declare(actor=ladder["declarer"], title="y", severity=2, services=[other])
    assert IncidentEscalation.objects.filter(incident=incident, policy=ladder["policy"]).exists()


def test_the_sweep_reads_only_due_escalations_in_constant_queries(ladder, django_assert_max_num_queries):
    with time_machine.travel(T0, tick=False):
        for _ in range(30):
            _declare(ladder)
    with time_machine.travel(T0 + 5 * MIN, tick=False), CaptureQueriesContext(connection) as ctx:
        assert escalation.escalate_due() == {"paged": 0, "late": 0}
    # One claim (its transaction's savepoints aside: the test runs inside a transaction).
    assert len(_statements(ctx)) == 1


def _statements(ctx) -> list[str]:
    return [q["sql"] for q in ctx.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]


def _sweep_queries(ladder, make_user, due: int) -> tuple[int, dict]:
    """Declare `due` incidents (some restricted, on two services, one with
    nobody on call), let L2 fall due, count the sweep's statements."""
    from opsconsole.models import Service

    other = Service.objects.create(name="Web", slug="web")
    with time_machine.travel(T0, tick=False):
        for i in range(due):
            incidents.incident_declare(
                actor=ladder["declarer"],
                title=f"API down {i}",
                severity=1,
                services=[ladder["service"] if i % 2 else other, ladder["service"]],
                restricted=i % 3 == 0,
            )
    with time_machine.travel(T0 + 16 * MIN, tick=False), CaptureQueriesContext(connection) as ctx:
        result = escalation.escalate_due()
    return len(_statements(ctx)), result


@pytest.mark.parametrize("due", [3, 50])
def test_a_sweep_pages_any_number_of_due_levels_in_the_same_number_of_statements(ladder, make_user, due):
    queries, result = _sweep_queries(ladder, make_user, due)
    assert result == {"paged": due, "late": 0}
    # claim, levels (+ their people, rotations on call), first services, steps,
    # clocks, timeline (events, activity, audit ×3: the escalation's own entry),
    # deliveries; then the claim that finds nothing. The same at 3 and 50 (and
    # 1,000: bench/).
    assert queries == 14, queries
    assert EscalationStep.objects.filter(position=2).count() == due
    assert Delivery.objects.filter(event="incident.escalated", target="lead@example.com").count() == due
    assert TimelineEvent.objects.filter(kind=EventKind.ESCALATION, text__contains="L2 Team lead").count() == due
    # One entry per level paged (levels 1 and 2), naming the timeline event that records it.
    entries = AuditEntry.objects.filter(action="oncall.escalate")
    assert entries.count() == 2 * due
    assert set(entries.values_list("after__level", flat=True)) == {1, 2}
    events = set(TimelineEvent.objects.filter(kind=EventKind.ESCALATION).values_list("pk", flat=True))
    assert {entry.after["event"] for entry in entries} == events
    assert not AuditEntry.objects.filter(action="incident.event_add", after__kind=EventKind.ESCALATION).exists()
    from opsconsole.audit_verify import verify_chain

    assert not list(verify_chain())


def test_the_incident_page_shows_the_escalation_state(ladder, client, django_assert_max_num_queries):
    with time_machine.travel(T0, tick=False):
        incident = _declare(ladder)
    with time_machine.travel(T0 + 16 * MIN, tick=False):
        escalation.escalate_due()
    client.force_login(ladder["commander"])
    html = client.get(reverse("incidents:detail", args=[incident.reference])).content.decode()
    assert 'data-testid="escalation-panel"' in html
    assert "L2 Team lead" in html and "lead" in html and "L3 CTO" in html


def test_advancing_twice_pages_once(ladder):
    with time_machine.travel(T0, tick=False):
        incident = _declare(ladder)
    state = IncidentEscalation.objects.get(incident=incident)
    with time_machine.travel(T0 + 15 * MIN, tick=False):
        first = escalation.advance(state.pk)
        second = escalation.advance(state.pk)
    assert first is not None and second is None
    assert len(_steps(incident)) == 2


def test_a_role_without_schedule_edit_cannot_see_policy_edit_links(client_as, ladder):
    client = client_as(Role.SRE)
    html = client.get(reverse("oncall:policies")).content.decode()
    assert "L1 On-call engineer" in html and "15 min" in html and "API" in html


def _editor(ladder, **changes) -> dict:
    """The policy editor's POST as drawn for the ladder, with `changes`."""
    levels = [
        {
            "name": lv.name,
            "wait_minutes": lv.wait_minutes,
            "rotation": lv.rotation_id,
            "users": [u.pk for u in lv.users.all()],
            "ORDER": lv.position,
        }
        for lv in ladder["policy"].levels.order_by("position")
    ]
    fields = {"name": "API ladder", "services": [ladder["service"]], "version": 0, "initial": 4, "levels": levels}
    fields.update(changes)
    return policy_post(f"p{ladder['policy'].pk}", **fields)


def _ladder_levels(ladder) -> list[tuple]:
    return [
        (lv.position, lv.name, lv.wait_minutes, lv.rotation_id, sorted(u.username for u in lv.users.all()))
        for lv in ladder["policy"].levels.order_by("position")
    ]


def test_a_manager_edits_policy_levels_in_rows(client_as, ladder, django_assert_max_num_queries):
    client = client_as(Role.MANAGER)
    url = reverse("oncall:policy_save", args=[ladder["policy"].pk])
    page = client.get(reverse("oncall:policies")).content.decode()
    assert page.count('data-testid="level-row"') == 4 + 2 + 2  # the ladder's rows + blank rows, + the new form's
    before = _ladder_levels(ladder)

    data = _editor(ladder)
    prefix = f"p{ladder['policy'].pk}-levels"
    assert data[f"{prefix}-TOTAL_FORMS"] == "4"
    # Reorder (CTO before team lead), change a wait, remove the CEO, add a level in a blank row.
    data.update({f"{prefix}-1-ORDER": "3", f"{prefix}-2-ORDER": "2", f"{prefix}-0-wait_minutes": "10"})
    data[f"{prefix}-3-DELETE"] = "on"
    data.update(
        {
            f"{prefix}-TOTAL_FORMS": "5",
            f"{prefix}-4-name": "Head of ops",
            f"{prefix}-4-wait_minutes": "45",
            f"{prefix}-4-users": [str(ladder["ceo"].pk), str(ladder["lead"].pk)],
            f"{prefix}-4-ORDER": "",
        }
    )
    with django_assert_max_num_queries(60):
        assert client.post(url, data).status_code == 302
    assert _ladder_levels(ladder) == [
        (1, "On-call engineer", 10, ladder["rotation"].pk, []),
        (2, "CTO", 60, None, ["cto"]),
        (3, "Team lead", 30, None, ["lead"]),
        (4, "Head of ops", 45, None, ["ceo", "lead"]),
    ]
    assert before != _ladder_levels(ladder)
    entry = AuditEntry.objects.filter(action="oncall.policy_save").latest("seq")
    assert len(entry.before["levels"]) == 4 and entry.after["levels"][1][1] == "CTO"
    ladder["policy"].refresh_from_db()
    assert ladder["policy"].version == 1


@pytest.mark.parametrize(
    "change, message",
    [
        ({"0-wait_minutes": "soon"}, "Enter a whole number."),
        ({"0-wait_minutes": "0"}, "greater than or equal to 1"),
        ({"0-wait_minutes": "99999999999999999999"}, "less than or equal to 10080"),
        ({"1-users": [], "1-rotation": ""}, "Name a rotation or people to page."),
        ({"1-rotation": "999999"}, "Select a valid choice."),
        ({"2-users": ["999999"]}, "Select a valid choice."),
        ({"0-name": ""}, "This field is required."),
        ({"0-DELETE": "on", "1-DELETE": "on", "2-DELETE": "on", "3-DELETE": "on"}, "at least one level"),
        ({"TOTAL_FORMS": "x"}, "ManagementForm data is missing or has been tampered with"),
        ({"0-ORDER": "first"}, "Enter a whole number."),
    ],
)
def test_bad_policy_rows_are_refused_in_place_and_nothing_changes(client_as, ladder, change, message):
    client = client_as(Role.MANAGER)
    prefix = f"p{ladder['policy'].pk}-levels"
    data = _editor(ladder)
    data.update({f"{prefix}-{key}": value for key, value in change.items()})
    before = _ladder_levels(ladder)
    response = client.post(reverse("oncall:policy_save", args=[ladder["policy"].pk]), data)
    html = response.content.decode()
    assert response.status_code == 200 and message in html.replace("&#x27;", "'")
    assert 'data-testid="policy-form"' in html and "open" in html
    assert _ladder_levels(ladder) == before
    assert not AuditEntry.objects.filter(action="oncall.policy_save").exists()


def test_a_stale_policy_edit_is_refused_not_saved_over_a_newer_one(client_as, ladder):
    first, second = client_as(Role.MANAGER), client_as(Role.ADMIN)
    url = reverse("oncall:policy_save", args=[ladder["policy"].pk])
    prefix = f"p{ladder['policy'].pk}-levels"
    mine, theirs = _editor(ladder), _editor(ladder)  # both drew the form at version 0
    mine[f"{prefix}-0-wait_minutes"] = "5"
    theirs[f"{prefix}-0-wait_minutes"] = "25"
    assert first.post(url, mine).status_code == 302
    late = second.post(url, theirs)
    assert late.status_code == 200 and "Someone else saved this policy" in late.content.decode()
    assert _ladder_levels(ladder)[0][2] == 5
    assert AuditEntry.objects.filter(action="oncall.policy_save").count() == 1


def test_a_manager_creates_a_policy(client_as, ladder):
    client = client_as(Role.MANAGER)
    data = policy_post(
        "pnew",
        name="Web ladder",
        levels=[{"name": "Web on-call", "wait_minutes": 20, "rotation": ladder["rotation"].pk}],
    )
    assert client.post(reverse("oncall:policy_add"), data).status_code == 302
    policy = EscalationPolicy.objects.get(name="Web ladder")
    assert [(lv.position, lv.wait_minutes) for lv in policy.levels.all()] == [(1, 20)]


def test_the_policies_page_keeps_its_query_count(client_as, ladder, django_assert_max_num_queries):
    from oncall.models import EscalationLevel

    client = client_as(Role.MANAGER)
    with django_assert_max_num_queries(20) as few:
        client.get(reverse("oncall:policies"))
    for n in range(5):
        policy = EscalationPolicy.objects.create(name=f"Extra {n}")
        for position in range(1, 4):
            level = EscalationLevel.objects.create(policy=policy, position=position, name="L", wait_minutes=5)
            level.users.add(ladder["lead"])
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(reverse("oncall:policies"))
    assert response.content.decode().count('data-testid="policy-form"') == 7


def test_a_restricted_incident_pages_without_its_title_or_the_shared_webhook(ladder):
    incident = incidents.incident_declare(
        actor=ladder["declarer"], title="Card data leaked", severity=1, services=[ladder["service"]], restricted=True
    )
    paged = Delivery.objects.filter(event="incident.escalated")
    assert list(paged.values_list("channel", "target")) == [("email", "ana@example.com")]
    assert "Card data leaked" not in str(paged.get().payload)
    assert _steps(incident) == [(1, ["oncall-ana"], False)]


def test_a_critical_check_starts_the_policy_of_its_service(ladder):
    from healthchecks.incident_hook import open_or_update_incident
    from healthchecks.models import Check, CheckStateChange

    check = Check.objects.create(name="API health", service=ladder["service"], kind="http", opens_incident=True)
    with time_machine.travel(T0, tick=False):
        change = CheckStateChange.objects.create(
            check_ref=check, changed_at=T0, from_state="ok", to_state="critical", summary="HTTP 503"
        )
        assert open_or_update_incident(change.pk)
    state = IncidentEscalation.objects.get(incident__dedup_key=f"check:{check.pk}")
    assert state.policy == ladder["policy"] and _steps(state.incident) == [(1, ["oncall-ana"], False)]
    with time_machine.travel(T0 + 15 * MIN, tick=False):
        assert escalation.escalate_due() == {"paged": 1, "late": 0}
