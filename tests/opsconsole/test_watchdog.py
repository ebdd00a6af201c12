"""The watchdog (opsconsole/watchdog.py) on a frozen clock: escalation levels,
checklist slots and probes that should have happened and did not show on
/healthz (503), in /metrics, and as audit rows when their state changes."""

import datetime

import pytest
import time_machine

from checklists.models import ChecklistTemplate, Schedule, TemplateItem
from checklists.services import create_due_runs
from incidents import services as incidents
from oncall.tasks import escalate_due
from opsconsole import metrics, watchdog
from opsconsole.models import AuditEntry
from opsconsole.tasks import run_watchdog
from tests.healthchecks.factories import make_check
from tests.oncall.factories import seed_policy

pytestmark = pytest.mark.django_db

UTC = datetime.UTC
T0 = datetime.datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
MIN = datetime.timedelta(minutes=1)


def _health(client) -> tuple[int, dict]:
    response = client.get("/healthz")
    return response.status_code, response.json()


def _exported(client, kind: str) -> float:
    body = client.get("/metrics").content.decode()
    line = next(line for line in body.splitlines() if line.startswith(f'opsconsole_watchdog_overdue{{kind="{kind}"}}'))
    return float(line.split()[-1])


def _recorded() -> list[tuple[str, str, int]]:
    return [
        (e.action, e.after["kind"], e.after["overdue"])
        for e in AuditEntry.objects.filter(action__startswith="watchdog.").order_by("seq")
    ]


def test_nothing_overdue_is_healthy(client, settings):
    with time_machine.travel(T0, tick=False):
        status, body = _health(client)
    assert status == 200, body
    assert body["watchdog"]["status"] == "ok"
    assert set(body["watchdog"]["kinds"]) == {"escalation", "checklist_slot", "probe"}
    assert body["watchdog"]["grace_minutes"] == settings.WATCHDOG_GRACE_MINUTES == 5


def test_an_escalation_level_not_paged_is_reported_recorded_and_cleared(client, make_user):
    ladder = seed_policy(make_user)
    with time_machine.travel(T0, tick=False):
        incidents.incident_declare(actor=ladder["declarer"], title="API down", severity=1, services=[ladder["service"]])
    # Level 2 falls due at T0+15m; beat is "down" (escalate_due never runs).
    with time_machine.travel(T0 + 19 * MIN, tick=False):
        assert watchdog.findings()["escalation"][1].count == 0  # within the grace
        run_watchdog()
    assert _recorded() == []
    with time_machine.travel(T0 + 21 * MIN, tick=False):
        status, body = _health(client)
        assert status == 503
        escalation = body["watchdog"]["kinds"]["escalation"]
        assert escalation["overdue"] == 1
        assert escalation["oldest_due_at"] == (T0 + 15 * MIN).isoformat()
        assert "level 2" in escalation["examples"][0]
        assert body["checks"]["database"]["status"] == "healthy"  # it is the work, not a dependency
        assert _exported(client, "escalation") == 1
        run_watchdog()
        run_watchdog()  # no second row while it stays overdue
        assert metrics.WATCHDOG_LAST_RUN._value.get() > 0
    assert _recorded() == [("watchdog.overdue", "escalation", 1)]
    with time_machine.travel(T0 + 22 * MIN, tick=False):
        escalate_due()  # beat is back: level 2 is paged (late)
        run_watchdog()
        status, body = _health(client)
    assert status == 200 and body["watchdog"]["kinds"]["escalation"] == {
        "label": "Escalation levels not paged",
        "overdue": 0,
    }
    assert _recorded() == [("watchdog.overdue", "escalation", 1), ("watchdog.cleared", "escalation", 0)]


def test_a_checklist_slot_without_its_run_is_reported_until_created(client):
    with time_machine.travel(T0 - datetime.timedelta(days=2), tick=False):
        template = ChecklistTemplate.objects.create(name="Morning checks")
        TemplateItem.objects.create(template=template, order=0, text="Dashboards green")
        Schedule.objects.create(template=template, time_of_day=datetime.time(8, 0), days_of_week="0123456")
    slot = T0.replace(hour=8)
    with time_machine.travel(slot + 4 * MIN, tick=False):
        assert watchdog.findings()["checklist_slot"][1].count == 0
    with time_machine.travel(slot + 6 * MIN, tick=False):
        finding = watchdog.findings()["checklist_slot"][1]
        assert (finding.count, finding.oldest_due_at) == (1, slot)
        assert finding.examples == ["Morning checks at 2026-06-01 08:00Z"]
        status, body = _health(client)
        assert status == 503 and body["watchdog"]["kinds"]["checklist_slot"]["overdue"] == 1
        run_watchdog()
        create_due_runs()
        assert watchdog.findings()["checklist_slot"][1].count == 0
        run_watchdog()
    assert _recorded() == [("watchdog.overdue", "checklist_slot", 1), ("watchdog.cleared", "checklist_slot", 0)]


def test_a_check_late_by_two_intervals_is_reported(client):
    due = T0 - 10 * MIN
    check = make_check(name="checkout tcp", interval_seconds=60, next_due_at=due)
    make_check(name="paused", interval_seconds=60, next_due_at=due, enabled=False)
    # Same due time, a longer interval: not late until 2 × 10 min + grace.
    slow = make_check(name="slow tls", interval_seconds=600, next_due_at=due)
    # Two intervals (2 min) and the grace (5 min) after it was due.
    with time_machine.travel(due + 7 * MIN, tick=False):
        assert watchdog.findings()["probe"][1].count == 0
    with time_machine.travel(due + 7 * MIN + datetime.timedelta(seconds=1), tick=False):
        finding = watchdog.findings()["probe"][1]
        assert (finding.count, finding.oldest_due_at) == (1, due)
        assert finding.examples == ["checkout tcp due 2026-06-01 09:50:00Z"]
        assert _exported(client, "probe") == 1
        body = client.get("/metrics").content.decode()
        assert 'opsconsole_watchdog_oldest_overdue_seconds{kind="probe"} 421.0' in body
    with time_machine.travel(due + 25 * MIN + datetime.timedelta(seconds=1), tick=False):
        assert watchdog.findings()["probe"][1].count == 2
    slow.delete()
    check.next_due_at = T0 + MIN  # probed and rescheduled
    check.save(update_fields=["next_due_at"])
    with time_machine.travel(T0, tick=False):
        status, body = _health(client)
    assert status == 200 and body["watchdog"]["kinds"]["probe"]["overdue"] == 0


def test_healthz_and_metrics_keep_a_constant_query_count(client, django_assert_max_num_queries, make_user):
    for n in range(5):
        make_check(name=f"late {n}", interval_seconds=30, next_due_at=T0 - 60 * MIN)
    with time_machine.travel(T0, tick=False), django_assert_max_num_queries(8):
        status, body = _health(client)
    assert status == 503 and body["watchdog"]["kinds"]["probe"]["overdue"] == 5
