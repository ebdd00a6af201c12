"""The escalation sweep with many open, unacknowledged incidents.

Runs in-process on a PostgreSQL bench database it drops and re-creates:

1. --incidents open, triggered incidents (bulk-inserted), each with a running
   escalation of the seeds' ladder (L1 15 min, L2 30 min, L3 1 h, L4 2 h) whose
   next level is not due yet: the sweep beat runs every 30 s — its time and
   SQL queries (it must not grow with the number of incidents);
2. then --due of them fall due at once (beat was down): one sweep pages each
   level once, batched (oncall/sweep.py: SWEEP_BATCH escalations per round in
   one transaction and a constant number of statements) — time, queries in
   total and per round, and the check that each escalation got exactly one
   step per level. Three samples (levels 2, 3 and 4 of the ladder fall due in
   turn) and their median. The issue's bar: bounded queries and under a
   second for 1,000.

    .venv/bin/python bench/oncall_bench.py --incidents 1000 --due 1000

Environment: BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/opsconsole_bench_oncall; dropped and
re-created), BENCH_REDIS_URL (default redis://127.0.0.1:6379/5).
"""

import argparse
import os
import statistics
import time

from common import bench_settings, setup_django

DB_URL = bench_settings("opsconsole_bench_oncall", redis_db=5, eager=False, CELERY_BROKER_URL="memory://")


def measure(fn):
    """(result, milliseconds, SQL statements) — counted by an execute wrapper,
    which has no cap (Django's query log keeps only the last 9,000)."""
    from django.db import connection

    count = [0]

    def counter(execute, sql, params, many, context):
        count[0] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(counter):
        started = time.perf_counter()
        result = fn()
        elapsed = (time.perf_counter() - started) * 1000
    return result, elapsed, count[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=1000)
    parser.add_argument("--due", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    setup_django(DB_URL)
    import datetime

    from django.utils import timezone

    from incidents.models import Incident, SeverityLevel
    from oncall import escalation
    from oncall.models import EscalationLevel, EscalationPolicy, EscalationStep, IncidentEscalation, Rotation, Shift
    from opsconsole.models import User

    now = timezone.now()
    people = {n: User.objects.create_user(n, email=f"{n}@example.com") for n in ("ana", "lead", "cto", "ceo")}
    rotation = Rotation.objects.create(name="Primary")
    Shift.objects.create(
        rotation=rotation,
        user=people["ana"],
        starts_at=now - datetime.timedelta(days=1),
        ends_at=now + datetime.timedelta(days=1),
    )
    policy = EscalationPolicy.objects.create(name="Seeds ladder", is_default=True)
    EscalationLevel.objects.create(
        policy=policy, position=1, name="On-call engineer", rotation=rotation, wait_minutes=15
    )
    for position, (name, user, wait) in enumerate(
        [("Team lead", "lead", 30), ("CTO", "cto", 60), ("CEO", "ceo", 120)], start=2
    ):
        EscalationLevel.objects.create(policy=policy, position=position, name=name, wait_minutes=wait).users.add(
            people[user]
        )
    sev = SeverityLevel.objects.get(level=1)
    started = now - datetime.timedelta(minutes=5)
    incidents = Incident.objects.bulk_create(
        Incident(
            reference=f"INC-2026-01-01-{i:04d}",
            title=f"Bench incident {i}",
            severity=sev,
            declared_at=started,
            ack_due_at=started + datetime.timedelta(minutes=15),
            resolve_due_at=started + datetime.timedelta(hours=4),
            last_activity_at=started,
        )
        for i in range(args.incidents)
    )
    escalations = IncidentEscalation.objects.bulk_create(
        IncidentEscalation(
            incident=incident,
            policy=policy,
            started_at=started,
            current_position=1,
            next_position=2,
            next_due_at=started + datetime.timedelta(minutes=15),
        )
        for incident in incidents
    )
    EscalationStep.objects.bulk_create(
        EscalationStep(
            escalation=e,
            position=1,
            level_name="On-call engineer",
            due_at=started,
            paged_at=started,
            recipients=["ana"],
        )
        for e in escalations
    )
    print(
        f"Escalation sweep with {args.incidents} open unacknowledged incidents (PostgreSQL {DB_URL.rsplit('/', 1)[-1]})"
    )

    times, queries = [], []
    for _ in range(args.repeat):
        result, ms, q = measure(escalation.escalate_due)
        assert result == {"paged": 0, "late": 0}, result
        times.append(ms)
        queries.append(q)
    times.sort()
    print(
        f"  nothing due (every beat tick)      p50 {statistics.median(times):7.1f} ms   max {times[-1]:7.1f} ms   "
        f"queries {min(queries)}–{max(queries)}"
    )

    from django.urls import reverse

    reverse("incidents:detail", args=[incidents[0].reference])  # a worker's URLconf is loaded once, not per sweep
    due_ids = [e.pk for e in escalations[: args.due]]
    # A worker does not hold the setup's thousands of model objects: drop them,
    # then freeze what is left as a worker does once started (opsconsole/celery.py).
    del incidents, escalations
    from opsconsole.celery import freeze_startup_heap

    freeze_startup_heap()
    # The ladder has three levels after L1: the same --due escalations fall
    # due three times (L2, then L3, then L4), three samples of the same work.
    # One sample on a shared 2-core machine says little; the median says more.
    samples = []
    for level in (2, 3, 4):
        IncidentEscalation.objects.filter(pk__in=due_ids).update(next_due_at=now - datetime.timedelta(minutes=1))
        total = {"paged": 0, "late": 0}
        elapsed_total, queries_total, sweeps = 0.0, 0, 0
        # This process's CPU time too: on a shared, loaded machine the wall time
        # says more about the neighbours than about the sweep.
        cpu_started = time.process_time()
        while True:
            result, ms, q = measure(escalation.escalate_due)
            if not result["paged"]:
                break
            sweeps += 1
            elapsed_total += ms
            queries_total += q
            total["paged"] += result["paged"]
            total["late"] += result["late"]
        cpu_ms = (time.process_time() - cpu_started) * 1000
        samples.append((elapsed_total, cpu_ms))
        rounds = -(-args.due // escalation.SWEEP_BATCH)
        steps = EscalationStep.objects.filter(escalation_id__in=due_ids, position=level).count()
        print(
            f"  {args.due} due at once, L{level} {elapsed_total:9.1f} ms wall, {cpu_ms:6.0f} ms CPU of this process: "
            f"{total['paged']} levels paged in {sweeps} sweep(s) of {rounds} round(s) of ≤{escalation.SWEEP_BATCH}, "
            f"{queries_total} queries; L{level} steps {steps} of {len(due_ids)} "
            f"(load average now {os.getloadavg()[0]:.1f})"
        )
    doubles = EscalationStep.objects.filter(escalation_id__in=due_ids).count() - 4 * len(due_ids)
    wall, cpu = statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)
    print(
        f"  median of the three: {wall:.1f} ms wall, {cpu:.0f} ms CPU "
        f"({wall / max(args.due, 1):.2f} ms per page); extra steps: {doubles}"
    )
    _result, ms, q = measure(escalation.escalate_due)
    print(f"  the sweep after that (nothing due)  {ms:7.1f} ms   queries {q}")


if __name__ == "__main__":
    main()
