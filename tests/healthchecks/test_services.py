from __future__ import annotations

import datetime
import threading

import pytest
from django.db import connection
from django.utils import timezone

from healthchecks import heartbeats, services
from healthchecks.models import Check, CheckResult, CheckRollup, CheckStateChange, MaintenanceWindow
from healthchecks.probes import ProbeResult
from opsconsole.models import AuditEntry
from tests.healthchecks.factories import make_check, make_service


@pytest.mark.parametrize(
    "current, pending, count, observed, needed, first, expected",
    [
        ("ok", "", 0, "ok", 2, False, ("ok", "", 0, False)),
        ("ok", "", 0, "critical", 2, False, ("ok", "critical", 1, False)),
        ("ok", "critical", 1, "critical", 2, False, ("critical", "", 0, True)),
        ("ok", "critical", 1, "warning", 2, False, ("ok", "warning", 1, False)),
        ("ok", "critical", 1, "ok", 2, False, ("ok", "", 0, False)),
        ("ok", "", 0, "critical", 1, False, ("critical", "", 0, True)),
        ("unknown", "", 0, "critical", 3, True, ("critical", "", 0, True)),
    ],
)
def test_flap_suppression(current, pending, count, observed, needed, first, expected):
    assert (
        services.decide_state(
            current=current,
            pending=pending,
            count=count,
            observed=observed,
            needed=needed,
            first=first,
        )
        == expected
    )


def _result(state="ok", latency=12.5, message="fine"):
    return ProbeResult(state, message, latency, {"http_status": 200})


@pytest.mark.django_db
def test_state_changes_only_after_consecutive_agreeing_results():
    check = make_check(consecutive_needed=3)
    services.record_results([(check.pk, _result("ok"))])
    check.refresh_from_db()
    assert check.state == "ok" and check.state_changed_at is not None  # first result: at once
    for expected_pending in (1, 2):
        services.record_results([(check.pk, _result("critical", message="refused"))])
        check.refresh_from_db()
        assert (check.state, check.pending_state, check.pending_count) == (
            "ok",
            "critical",
            expected_pending,
        )
    services.record_results([(check.pk, _result("critical", message="refused"))])
    check.refresh_from_db()
    assert check.state == "critical" and check.last_message == "refused"
    changes = list(CheckStateChange.objects.filter(check_ref=check).values_list("from_state", "to_state"))
    assert changes == [("ok", "critical"), ("unknown", "ok")]
    assert CheckResult.objects.filter(check_ref=check).count() == 4
    assert check.recent_latencies == [12.5] * 4
    actions = AuditEntry.objects.filter(action="healthchecks.state_change", target_id=str(check.pk))
    assert [a.after["state"] for a in actions.order_by("seq")] == ["ok", "critical"]


@pytest.mark.django_db
def test_recent_latencies_keep_the_last_twenty():
    check = make_check()
    for i in range(25):
        services.record_results([(check.pk, _result(latency=float(i)))])
    check.refresh_from_db()
    assert check.recent_latencies == [float(i) for i in range(5, 25)]


@pytest.mark.django_db
def test_claim_leases_due_checks_once_and_groups_by_queue():
    due = [make_check() for _ in range(3)]
    pinned = make_check(queue="eu-west")
    make_check(next_due_at=timezone.now() + datetime.timedelta(minutes=5))  # not due
    make_check(enabled=False)
    now = timezone.now()
    claims = services.claim_due_checks(now=now)
    by_queue = {claim.queue: sorted(claim.check_ids) for claim in claims}
    assert by_queue == {"default": sorted(c.pk for c in due), "eu-west": [pinned.pk]}
    assert services.claim_due_checks(now=now) == []  # leased: not claimed twice


@pytest.mark.django_db
def test_a_killed_worker_loses_no_check():
    check = make_check(timeout_seconds=5)
    now = timezone.now()
    [claim] = services.claim_due_checks(now=now)
    # The worker dies: no result is written. Within the lease nobody re-sends it ...
    assert services.claim_due_checks(now=now + datetime.timedelta(seconds=10)) == []
    # ... once the lease (timeout + margin) expires it is due again.
    [again] = services.claim_due_checks(now=now + datetime.timedelta(seconds=36))
    assert again.check_ids == [check.pk] and again.token != claim.token
    # The dead worker's stale batch, if it ever finishes, writes nothing.
    assert services.record_results([(check.pk, _result())], lease_token=claim.token) == []
    assert not CheckResult.objects.exists()
    services.record_results([(check.pk, _result())], lease_token=again.token)
    check.refresh_from_db()
    assert check.lease_token is None and check.next_due_at > now + datetime.timedelta(seconds=36)
    assert CheckResult.objects.count() == 1


@pytest.mark.django_db
def test_a_check_keeps_its_pace_however_late_it_ran():
    """The next run is due one interval after the run was due, not after it
    ran: dispatch waits and probe time do not stretch the period. More than
    half an interval late, it waits half an interval (no burst of catch-up
    runs); a first run counts from its result."""
    due = timezone.now() - datetime.timedelta(seconds=4)
    first = make_check(interval_seconds=30, next_due_at=None)
    late = make_check(interval_seconds=30, next_due_at=due)
    very_late = make_check(interval_seconds=30, next_due_at=due - datetime.timedelta(seconds=40))
    claims = services.claim_due_checks()
    for claim in claims:
        services.record_results([(pk, _result()) for pk in claim.check_ids], lease_token=claim.token)
    rows = {c.pk: c for c in Check.objects.all()}
    ran = rows[late.pk].last_checked_at
    assert rows[late.pk].next_due_at == due + datetime.timedelta(seconds=30)
    assert rows[very_late.pk].next_due_at == rows[very_late.pk].last_checked_at + datetime.timedelta(seconds=15)
    assert rows[first.pk].next_due_at == rows[first.pk].last_checked_at + datetime.timedelta(seconds=30)
    assert all(c.scheduled_at is None and c.lease_token is None for c in rows.values())
    assert ran > due


@pytest.mark.django_db
def test_dispatch_never_holds_more_leases_than_its_limit(settings):
    """Workers behind: a dispatch claims only what the live leases leave of
    HEALTHCHECK_DISPATCH_LIMIT, so queued batches never outlive their leases."""
    settings.HEALTHCHECK_DISPATCH_LIMIT = 3
    checks = [make_check(timeout_seconds=5) for _ in range(5)]
    now = timezone.now()
    first = services.claim_due_checks(now=now, batch_size=2)
    assert [len(c.check_ids) for c in first] == [2, 1]
    # Three leases live: the next dispatch claims nothing although 2 are due.
    assert services.claim_due_checks(now=now + datetime.timedelta(seconds=1)) == []
    services.record_results([(pk, _result()) for pk in first[0].check_ids], lease_token=first[0].token)
    second = services.claim_due_checks(now=now + datetime.timedelta(seconds=5))
    assert sum(len(c.check_ids) for c in second) == 2
    claimed = [pk for c in first + second for pk in c.check_ids]
    assert sorted(claimed) == sorted(c.pk for c in checks)
    # An expired lease does not count: a dead worker's check frees its place
    # and is claimed again (the second claim's 2 leases still live).
    again = services.claim_due_checks(now=now + datetime.timedelta(seconds=36))
    assert [c.check_ids for c in again] == [first[1].check_ids]


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_never_claim_the_same_check():
    service = make_service()
    Check.objects.bulk_create(
        [Check(service=service, name=f"c{i}", kind="tcp", next_due_at=timezone.now()) for i in range(400)]
    )
    got: list[list[int]] = [[], []]
    barrier = threading.Barrier(2)

    def dispatch(slot: int) -> None:
        barrier.wait()
        for claim in services.claim_due_checks(batch_size=25):
            got[slot].extend(claim.check_ids)
        connection.close()

    threads = [threading.Thread(target=dispatch, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not set(got[0]) & set(got[1])
    assert len(got[0]) + len(got[1]) == 400


@pytest.mark.django_db
def test_maintenance_window_silences_incident_actions(django_capture_on_commit_callbacks, monkeypatch):
    sent = []
    monkeypatch.setattr("healthchecks.tasks.state_change_action.delay", lambda pk: sent.append(pk))
    quiet = make_check(opens_incident=True, consecutive_needed=1)
    loud = make_check(opens_incident=True, consecutive_needed=1)
    now = timezone.now()
    MaintenanceWindow.objects.create(
        service=quiet.service,
        starts_at=now - datetime.timedelta(minutes=5),
        ends_at=now + datetime.timedelta(hours=1),
        reason="DB upgrade",
    )
    with django_capture_on_commit_callbacks(execute=True):
        changes = services.record_results([(quiet.pk, _result("critical")), (loud.pk, _result("critical"))])
    silenced = {c.check_ref.pk: c.silenced for c in changes}
    assert silenced == {quiet.pk: True, loud.pk: False}
    assert sent == [c.pk for c in changes if c.check_ref.pk == loud.pk]


@pytest.mark.django_db
def test_rollups_and_pruning(settings):
    settings.HEALTHCHECK_RAW_RETENTION_DAYS = 7
    check = make_check()
    base = timezone.now().replace(minute=0, second=0, microsecond=0) - datetime.timedelta(hours=2)
    rows = [
        CheckResult(check_ref=check, checked_at=base + datetime.timedelta(minutes=m), state=s, latency_ms=ms)
        for m, s, ms in [(1, "ok", 10), (2, "ok", 30), (3, "critical", 50), (61, "ok", 5)]
    ]
    old = CheckResult(check_ref=check, checked_at=timezone.now() - datetime.timedelta(days=8), state="ok")
    CheckResult.objects.bulk_create([*rows, old])
    assert services.rollup_results() == 2
    assert services.rollup_results() == 2  # idempotent: same rows rewritten
    first = CheckRollup.objects.get(check_ref=check, hour=base)
    assert (first.count, first.ok_count, first.latency_min_ms, first.latency_max_ms) == (
        3,
        2,
        10,
        50,
    )
    assert first.latency_avg_ms == pytest.approx(30) and first.success_ratio == pytest.approx(2 / 3)
    raw, _ = services.prune_results()
    assert raw == 1 and CheckResult.objects.count() == 4


@pytest.mark.django_db
def test_heartbeat_ping_turns_the_check_ok_and_fail_turns_it_critical():
    check = make_check(kind="heartbeat", config={"period_seconds": 3600, "grace_seconds": 60}, consecutive_needed=1)
    assert heartbeats.heartbeat_ping(token=check.heartbeat_token) is not None
    check.refresh_from_db()
    assert check.state == "ok" and check.last_ping_at is not None
    assert check.last_latency_ms is None and check.results.get().latency_ms is None
    heartbeats.heartbeat_ping(token=check.heartbeat_token, failed=True)
    check.refresh_from_db()
    assert check.state == "critical" and check.last_message.startswith("the job reported a failure")
    other = make_check()
    assert heartbeats.heartbeat_ping(token=other.heartbeat_token) is None  # not a heartbeat


def test_audit_snapshots_hide_credentials():
    assert services._mask("url", "redis://:s3cret@redis:6379/0") == "redis://***@redis:6379/0"
    assert services._mask("url", "https://api.example.com/healthz") == "https://api.example.com/healthz"
    assert services._mask("dsn", "postgresql://app:pw@db/app") == "***"
    assert services._mask("headers", {"Authorization": "Bearer x"}) == "***"


@pytest.mark.django_db
def test_chart_uses_rollups_once_raw_results_are_pruned(settings):
    from healthchecks import selectors, tasks

    settings.HEALTHCHECK_RAW_RETENTION_DAYS = 1
    check = make_check()
    two_hours_ago = timezone.now().replace(minute=0, second=0, microsecond=0) - datetime.timedelta(hours=2)
    CheckResult.objects.create(check_ref=check, checked_at=two_hours_ago, state="ok", latency_ms=40)
    assert [ms for _at, ms in selectors.latency_series(check)] == [40]
    tasks.prune_results.delay()  # rolls up, then prunes nothing (too recent)
    CheckResult.objects.update(checked_at=timezone.now() - datetime.timedelta(days=2))
    tasks.prune_results.delay()  # now the raw row goes; its rollup stays
    assert not CheckResult.objects.exists()
    assert [(at, ms) for at, ms in selectors.latency_series(check)] == [(two_hours_ago, 40)]
