"""Incident page speed at 5,000 timeline events, and alert ingestion throughput.

Runs in-process with Django's test client (no network in the timings) on a
PostgreSQL bench database it drops and re-creates:

1. declares an incident and fills its timeline to --events events
   (bulk insert; plus --service-events written through timeline_add_event,
   the path every area uses, to time it with its audit entry);
2. times the incident page (first timeline page), the "since" poll and a
   deep "older" page: server time p50/p95/max and SQL queries per request;
3. posts Alertmanager v4 webhook payloads: --groups alert groups, each
   delivery with --alerts-per-group alerts, every delivery sent twice (a
   retry) — reports unique alerts/s and deliveries/s, then checks that the
   database holds one incident per group and one receipt per unique alert.

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
    args = parser.parse_args()

    setup_django(DB_URL)
    from datetime import timedelta

    from django.contrib.auth.models import Group
    from django.test import Client
    from django.utils import timezone

    from incidents import services
    from incidents.models import AlertReceipt, EventKind, Incident, TimelineEvent
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

    print(f"\nAlert ingestion: {args.groups} groups x {args.alerts_per_group} alerts, every delivery sent twice")
    headers = {"Authorization": f"Bearer {raw}"}
    now = timezone.now().isoformat()

    def payload(group: int, status: str = "firing") -> dict:
        items = [
            {
                "status": status,
                "labels": {
                    "alertname": f"Bench{group}",
                    "severity": ("critical", "high", "medium", "low")[group % 4],
                    "instance": f"node-{n}",
                    "service": "message-queue",
                },
                "annotations": {"summary": f"Bench alert group {group}"},
                "startsAt": now,
                "endsAt": now if status == "resolved" else "0001-01-01T00:00:00Z",
                "fingerprint": f"{group:08x}{n:08x}",
            }
            for n in range(args.alerts_per_group)
        ]
        return {
            "version": "4",
            "groupKey": f'{{}}:{{alertname="Bench{group}"}}',
            "status": status,
            "receiver": "console",
            "groupLabels": {"alertname": f"Bench{group}"},
            "commonLabels": {"alertname": f"Bench{group}"},
            "commonAnnotations": {},
            "externalURL": "",
            "alerts": items,
        }

    deliveries = 0
    latencies = []
    started = time.perf_counter()
    for status in ("firing", "resolved"):
        for group in range(args.groups):
            body = payload(group, status)
            for _attempt in range(2):  # the second is Alertmanager retrying
                t0 = time.perf_counter()
                response = client.post(
                    "/api/alerts/alertmanager",
                    body,
                    content_type="application/json",
                    headers=headers,
                )
                latencies.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200, response.content
                deliveries += 1
    elapsed = time.perf_counter() - started
    unique = 2 * args.groups * args.alerts_per_group
    latencies.sort()
    print(
        f"  {deliveries} deliveries ({unique} unique alert notifications, "
        f"{unique} retried duplicates) "
        f"in {elapsed:.2f} s"
    )
    print(
        f"  {unique / elapsed:.0f} unique alerts/s, "
        f"{2 * unique / elapsed:.0f} alerts/s incl. duplicates, "
        f"{deliveries / elapsed:.0f} deliveries/s; "
        f"delivery p50 {statistics.median(latencies):.1f} ms, "
        f"p95 {latencies[int(len(latencies) * 0.95) - 1]:.1f} ms"
    )
    opened = Incident.objects.filter(dedup_key__startswith="alertmanager:").count()
    receipts = AlertReceipt.objects.count()
    resolved_events = TimelineEvent.objects.filter(kind="alert", data__resolved=True).count()
    print(
        f"  check: {opened} incidents (expected {args.groups}), "
        f"{receipts} receipts (expected {unique}), "
        f"{resolved_events} resolved events (expected {args.groups})"
    )
    assert opened == args.groups and receipts == unique and resolved_events == args.groups


if __name__ == "__main__":
    main()
