"""Alert storm: the real Alertmanager delivers --alerts alerts in --groups
groups to the console under gunicorn, then their resolves.

Starts gunicorn (--workers x --threads, pools of --pool connections each) on
a PostgreSQL bench database it drops and re-creates, and the Alertmanager
binary (group_by alertname, group_wait 1s, group_interval --group-interval,
default 1m as in production: Alertmanager cancels a delivery that takes
longer than the group interval, at least 10 s, and retries it) with a
webhook to the console. Pushes the firing alerts through Alertmanager's v2 API, waits
until every alert notification is stored, then pushes the resolves.

Prints, from the database's own timestamps: time from the first delivery to
the last incident opened and to the last receipt, gunicorn's CPU seconds per
phase (from /proc: less sensitive to other load on the machine than wall time), webhook answers by status
(from gunicorn's access log), and checks: exactly one incident per group,
one receipt per alert notification, no signal left firing (no lost
resolve), the audit chains intact.

    .venv/bin/python bench/alert_storm_bench.py --alerts 10000 --groups 500

Environment: BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/opsconsole_bench_storm; dropped and
re-created), BENCH_REDIS_URL (default redis://127.0.0.1:6379/5).
"""

import argparse
import collections
import json
import os
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import recreate_database  # noqa: E402
from bench.servers import (  # noqa: E402
    alertmanager,
    cpu_seconds,
    gunicorn,
    process_env,
    push_alerts,
    storm_alerts,
    wait_for,
)

DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/opsconsole_bench_storm")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")


def answers(log: Path) -> collections.Counter:
    """Webhook answers by status, from gunicorn's JSON access log lines."""
    counts: collections.Counter = collections.Counter()
    for line in log.read_text().splitlines():
        if "/api/alerts/alertmanager" in line:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            counts[str(record.get("status") or record.get("message", "").rsplit(" ", 1)[-1])] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=10000)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--pool", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=180, help="seconds to wait for each phase")
    parser.add_argument(
        "--group-interval",
        default="1m",
        help="Alertmanager's group_interval: also how long it waits for a delivery (at least 10 s) before "
        "cancelling and retrying it; resolves are sent at the next interval",
    )
    args = parser.parse_args()
    per_group = args.alerts // args.groups

    started_load = f"{os.getloadavg()[0]:.2f}"
    recreate_database(DB_URL)
    env = process_env(DB_URL, REDIS_URL, WEB_CONCURRENCY=str(args.workers), WEB_THREADS=str(args.threads))
    env["DATABASE_POOL_MAX_SIZE"] = str(args.pool)
    os.environ.update({k: env[k] for k in ("DEBUG", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "LOG_LEVEL")})
    os.environ.update(CELERY_BROKER_URL="", DJANGO_SETTINGS_MODULE="opsconsole.settings")
    import django

    django.setup()
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db.models import Max, Min

    from incidents.models import AlertReceipt, Incident, IncidentSignal
    from opsconsole import audit_verify
    from opsconsole.models import ApiToken, User
    from opsconsole.roles import Role

    call_command("migrate", verbosity=0)
    bot = User.objects.create_user("storm-alertmanager", password="x")
    bot.groups.add(Group.objects.get(name=Role.SRE.value))
    raw, prefix, token_hash = ApiToken.generate()
    ApiToken.objects.create(user=bot, name="storm", prefix=prefix, token_hash=token_hash)

    total = per_group * args.groups
    print(
        f"Alert storm: {total} alerts in {args.groups} groups through Alertmanager -> gunicorn "
        f"({args.workers} workers x {args.threads} threads, pool {args.pool} per worker), PostgreSQL"
    )
    # Kept after the run (gunicorn's and Alertmanager's logs), replaced by the next one.
    work = ROOT / "var" / "alert-storm"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    log = work / "gunicorn.log"
    if True:
        with gunicorn(env, log) as console:
            with alertmanager(
                f"{console}/api/alerts/alertmanager", raw, work / "alertmanager", group_interval=args.group_interval
            ) as am:
                now = datetime.now(UTC)
                starts = (now - timedelta(minutes=5)).isoformat()
                phases = (
                    ("firing", (now + timedelta(hours=1)).isoformat()),
                    ("resolved", None),
                )
                for status, ends in phases:
                    ends = ends or (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
                    cpu_before = cpu_seconds(console)
                    pushed = time.perf_counter()
                    push_alerts(am, storm_alerts(args.groups, per_group, starts, ends))
                    push_seconds = time.perf_counter() - pushed
                    receipts = AlertReceipt.objects.filter(status=status)
                    wait_for(lambda r=receipts: r.count() >= total, args.timeout, f"{total} {status} receipts")
                    span = receipts.aggregate(first=Min("received_at"), last=Max("received_at"))
                    line = (
                        f"  {status:<8}: pushed in {push_seconds:.2f} s; first delivery -> last receipt "
                        f"{(span['last'] - span['first']).total_seconds():.2f} s"
                    )
                    if status == "firing":
                        last_open = Incident.objects.aggregate(last=Max("declared_at"))["last"]
                        opened_in = (last_open - span["first"]).total_seconds()
                        line += f"; first delivery -> {args.groups}th incident open {opened_in:.2f} s"
                    line += f"; gunicorn CPU {cpu_seconds(console) - cpu_before:.1f} s"
                    print(line)
                time.sleep(1)  # the access log is flushed line by line; let the last lines land
        counts = answers(log)
    print(f"  webhook answers: {dict(sorted(counts.items()))} ({sum(counts.values())} deliveries)")
    print(f"  load average at the start {started_load}, at the end {os.getloadavg()[0]:.2f}")
    incidents = Incident.objects.filter(dedup_key__startswith="alertmanager:")
    opened, distinct = incidents.count(), incidents.values("dedup_key").distinct().count()
    firing_left = IncidentSignal.objects.filter(firing=True).count()
    receipts = AlertReceipt.objects.count()
    problems = list(audit_verify.verify_chain())
    print(
        f"  check: {opened} incidents ({distinct} distinct groups; expected {args.groups}), "
        f"{receipts} receipts (expected {2 * total}), {firing_left} signals still firing (expected 0), "
        f"{counts.get('500', 0)} answers 500 (expected 0), audit {'intact' if not problems else problems[0].message}"
    )
    assert opened == distinct == args.groups and receipts == 2 * total and firing_left == 0
    assert not counts.get("500") and not problems


if __name__ == "__main__":
    main()
