"""Incident page speed at 5,000 timeline events, and alert ingestion throughput.

Runs in-process with Django's test client (no network in the timings) on a
PostgreSQL bench database it drops and re-creates:

1. declares an incident and fills its timeline to --events events
   (bulk insert; plus --service-events written through timeline_add_event,
   the path every area uses, to time it with its audit entry);
2. times the incident page (first timeline page), the "since" poll and a
   deep "older" page: server time p50/p95/max and SQL queries per request;
3. posts Alertmanager v4 webhook payloads, every group firing then
   resolved, in two shapes: --groups groups of --alerts-per-group alerts,
   every delivery sent twice (a retry); then the storm shape, Alertmanager-
   sized deliveries (--storm-groups groups of --storm-alerts alerts, sent
   once), in one process and then shared among --processes forked
   processes (as among gunicorn's workers; still no HTTP) — reports unique
   alerts/s and deliveries/s with the posting processes' CPU time, SQL
   queries per delivery and latency per kind of delivery, then checks that
   the database holds one incident per group, one receipt per unique alert
   and one resolved event per group.

    .venv/bin/python bench/incidents_bench.py --events 5000

Environment: BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/opsconsole_bench_incidents; dropped and
re-created), BENCH_REDIS_URL (default redis://127.0.0.1:6379/5).
"""

import argparse
import statistics
import time

from common import bench_settings, setup_django, timed

DB_URL = bench_settings("opsconsole_bench_incidents", redis_db=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--service-events", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--alerts-per-group", type=int, default=5)
    parser.add_argument("--storm-groups", type=int, default=500, help="second shape, Alertmanager-sized; 0: skip")
    parser.add_argument("--storm-alerts", type=int, default=20, help="alerts per delivery in the second shape")
    parser.add_argument(
        "--processes", type=int, default=2, help="the storm shape again, shared among this many processes"
    )
    args = parser.parse_args()

    setup_django(DB_URL)
    from datetime import timedelta

    from django.contrib.auth.models import Group
    from django.test import Client
    from django.utils import timezone

    from incidents import services
    from incidents.models import EventKind, TimelineEvent
    from opsconsole.models import ApiToken, User
    from opsconsole.roles import Role

    commander = User.objects.create_user("bench-commander", password="x")
    commander.groups.add(Group.objects.get(name=Role.INCIDENT_COMMANDER.value))
    bot = User.objects.create_user("bench-alertmanager", password="x")
    bot.groups.add(Group.objects.get(name=Role.SRE.value))
    raw, prefix, token_hash = ApiToken.generate()
    ApiToken.objects.create(user=bot, name="bench", prefix=prefix, token_hash=token_hash)

    print(f"Incident page with {args.events} timeline events (PostgreSQL {DB_URL.rsplit('/', 1)[-1]})")
    incident = services.incident_declare(actor=commander, title="Bench: queue backlog", severity=2, commander=commander)
    bulk = max(0, args.events - args.service_events - 1)
    start = timezone.now() - timedelta(hours=6)
    started = time.perf_counter()
    for offset in range(0, bulk, 1000):
        TimelineEvent.objects.bulk_create(
            TimelineEvent(
                incident=incident,
                kind=(EventKind.NOTE, EventKind.ALERT, EventKind.CHECK)[i % 3],
                author=commander if i % 3 == 0 else None,
                author_label="" if i % 3 == 0 else "bench",
                text=f"Event {i}: queue length {5000 + i}",
                html=f"<p>Event {i}: queue length {5000 + i}</p>",
                occurred_at=start + timedelta(seconds=i),
                recorded_at=start + timedelta(seconds=i),
            )
            for i in range(offset, min(bulk, offset + 1000))
        )
    fill = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(args.service_events):
        services.timeline_add_event(
            incident=incident,
            kind="note",
            text=f"Service note {i} with **markdown**",
            actor=commander,
        )
    through_service = time.perf_counter() - started
    from django.db import connection

    with connection.cursor() as cursor:  # what autovacuum would do after a bulk load
        cursor.execute("ANALYZE")
    total = TimelineEvent.objects.filter(incident=incident).count()
    print(
        f"  filled {total} events: {bulk} bulk in {fill:.2f} s; {args.service_events} through "
        f"timeline_add_event (sanitise + audit) at "
        f"{args.service_events / through_service:.0f} events/s"
    )

    client = Client()
    client.force_login(commander)
    url = f"/incidents/{incident.reference}/"
    for _ in range(3):
        assert client.get(url).status_code == 200
    timing = timed(lambda: client.get(url), args.repeat)
    assert timing.last.status_code == 200 and timing.last.content.count(b'class="event kind-') == 50
    print(timing.line("incident page (first 50 events)"))
    latest = TimelineEvent.objects.filter(incident=incident).order_by("-id").values_list("id", flat=True)[0]
    timing = timed(
        lambda: client.get(f"{url}timeline/since/", {"after": latest}, headers={"HX-Request": "true"}),
        args.repeat,
    )
    assert timing.last.status_code == 204
    print(timing.line("since poll (nothing new)"))
    deep = TimelineEvent.objects.filter(incident=incident).order_by("occurred_at", "id")[50]
    from incidents.selectors import encode_cursor

    timing = timed(
        lambda: client.get(f"{url}timeline/older/", {"before": encode_cursor(deep)}, headers={"HX-Request": "true"}),
        args.repeat,
    )
    assert timing.last.status_code == 200
    print(timing.line("older page near the end"))
    timing = timed(lambda: client.get("/incidents/", {"q": "backlog"}), max(5, args.repeat // 3))
    print(timing.line("incident list, full-text search"))

    ingest_alerts(raw, args.groups, args.alerts_per_group, sends=2, prefix="Bench")
    if args.storm_groups:
        for processes in sorted({1, args.processes}):
            ingest_alerts(
                raw, args.storm_groups, args.storm_alerts, sends=1, prefix=f"Storm{processes}p", processes=processes
            )


def _payload(prefix: str, now: str, group: int, per_group: int, status: str) -> dict:
    items = [
        {
            "status": status,
            "labels": {
                "alertname": f"{prefix}{group}",
                "severity": ("critical", "high", "medium", "low")[group % 4],
                "instance": f"node-{n}",
                "service": "message-queue",
            },
            "annotations": {"summary": f"{prefix} alert group {group}"},
            "startsAt": now,
            "endsAt": now if status == "resolved" else "0001-01-01T00:00:00Z",
            "fingerprint": f"{group:08x}{n:08x}",
        }
        for n in range(per_group)
    ]
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{prefix}{group}"}}',
        "status": status,
        "receiver": "console",
        "groupLabels": {"alertname": f"{prefix}{group}"},
        "commonLabels": {"alertname": f"{prefix}{group}"},
        "commonAnnotations": {},
        "externalURL": "",
        "alerts": items,
    }


def _post_share(job: tuple) -> tuple[int, int, dict, float]:
    """One worker's share of the groups (every `processes`-th one): each
    firing, then each resolved, every delivery `sends` times. Returns
    deliveries, SQL statements, latencies by kind and this process's CPU."""
    token, groups, per_group, sends, prefix, now, share, processes = job
    from django.db import connection
    from django.test import Client

    client = Client()
    headers = {"Authorization": f"Bearer {token}"}
    deliveries = statements = 0
    latencies: dict[str, list[float]] = {"firing": [], "resolved": [], "retry": []}

    def count(execute, sql, params, many, context):
        nonlocal statements
        statements += 1
        return execute(sql, params, many, context)

    started_cpu = time.process_time()
    with connection.execute_wrapper(count):
        for status in ("firing", "resolved"):
            for group in range(share, groups, processes):
                body = _payload(prefix, now, group, per_group, status)
                for attempt in range(sends):
                    t0 = time.perf_counter()
                    response = client.post(
                        "/api/alerts/alertmanager", body, content_type="application/json", headers=headers
                    )
                    latencies["retry" if attempt else status].append((time.perf_counter() - t0) * 1000)
                    assert response.status_code == 200, response.content
                    deliveries += 1
    return deliveries, statements, latencies, time.process_time() - started_cpu


def ingest_alerts(token: str, groups: int, per_group: int, *, sends: int, prefix: str, processes: int = 1) -> None:
    """Post Alertmanager v4 deliveries: each group firing, then each group
    resolved, every delivery `sends` times (the later ones are Alertmanager
    retrying). With `processes` > 1 the groups are shared among that many
    forked processes, as among gunicorn's workers (still no HTTP server).
    Prints unique alerts/s with the posting processes' CPU time beside the
    wall time (the database's CPU is not in it), then checks the result."""
    import multiprocessing

    from django.db import connection
    from django.utils import timezone

    from incidents.models import AlertReceipt, Incident, TimelineEvent

    retried = (
        ", every delivery sent twice" if sends == 2 else (f", every delivery sent {sends} times" if sends > 2 else "")
    )
    workers = f", {processes} processes" if processes > 1 else ", 1 process"
    print(f"\nAlert ingestion: {groups} groups x {per_group} alerts, firing then resolved{retried}{workers}")
    now = timezone.now().isoformat()
    incidents_before = Incident.objects.filter(dedup_key__startswith="alertmanager:").count()
    receipts_before = AlertReceipt.objects.count()
    resolved_before = TimelineEvent.objects.filter(kind="alert", data__resolved=True).count()
    jobs = [(token, groups, per_group, sends, prefix, now, share, processes) for share in range(processes)]
    started = time.perf_counter()
    if processes == 1:
        results = [_post_share(jobs[0])]
    else:
        # Each forked process must open its own connections: an inherited
        # pool would hand the same sockets to both.
        connection.close()
        if getattr(connection, "pool", None) is not None:
            connection.close_pool()
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            results = pool.map(_post_share, jobs)
    elapsed = time.perf_counter() - started
    deliveries = sum(r[0] for r in results)
    statements = sum(r[1] for r in results)
    cpu = sum(r[3] for r in results)
    latencies = {kind: [v for r in results for v in r[2][kind]] for kind in ("firing", "resolved", "retry")}
    unique = 2 * groups * per_group
    print(
        f"  {deliveries} deliveries ({unique} unique alert notifications"
        + (f", {unique * (sends - 1)} retried duplicates" if sends > 1 else "")
        + f") in {elapsed:.2f} s wall, {cpu:.2f} s CPU of the posting process(es); "
        f"{statements / deliveries:.1f} queries per delivery"
    )
    print(
        f"  {unique / elapsed:.0f} unique alerts/s ({unique / cpu:.0f} per CPU second), "
        f"{sends * unique / elapsed:.0f} alerts/s incl. duplicates, "
        f"{deliveries / elapsed:.0f} deliveries/s"
    )
    for kind, values in latencies.items():
        if values:
            values.sort()
            print(
                f"  {kind + ' delivery':<18} p50 {statistics.median(values):6.1f} ms   "
                f"p95 {values[max(0, int(len(values) * 0.95) - 1)]:6.1f} ms"
            )
    opened = Incident.objects.filter(dedup_key__startswith="alertmanager:").count() - incidents_before
    receipts = AlertReceipt.objects.count() - receipts_before
    resolved_events = TimelineEvent.objects.filter(kind="alert", data__resolved=True).count() - resolved_before
    print(
        f"  check: {opened} incidents (expected {groups}), "
        f"{receipts} receipts (expected {unique}), "
        f"{resolved_events} resolved events (expected {groups})"
    )
    assert opened == groups and receipts == unique and resolved_events == groups


if __name__ == "__main__":
    main()
