"""Manager reviews page speed at a large incident history.

Runs in-process with Django's test client (no network in the timings) on a
PostgreSQL bench database it drops and re-creates:

1. generates --incidents past incidents over --days days with reviews,
   action items and recurrences (incidents.reviews.demo.generate_history, the
   same generator seed_demo uses at 300 incidents);
2. times /incidents/reviews/ (lists + six trend charts) for the default 12
   weeks, 52 weeks, and 12 weeks filtered by one service, plus one review page
   and the Markdown export: server time p50/p95/max and SQL queries per request.

    .venv/bin/python bench/reviews_bench.py --incidents 5000

Target: the manager page under 300 ms at 5,000 incidents.
Environment: BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/opsconsole_bench_reviews; dropped and
re-created), BENCH_REDIS_URL (default redis://127.0.0.1:6379/7).
"""

import argparse
import os
import time

from common import bench_settings, setup_django, timed

DB_URL = bench_settings("opsconsole_bench_reviews", redis_db=7)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=5000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    setup_django(DB_URL)
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.test import Client

    from incidents.models import ActionItem, Incident, Review
    from incidents.reviews.demo import generate_history
    from opsconsole.models import User
    from opsconsole.roles import Role

    for name, role in (("sre", Role.SRE), ("commander", Role.INCIDENT_COMMANDER), ("manager", Role.MANAGER)):
        user = User.objects.create_user(name, password="x")
        user.groups.add(Group.objects.get(name=role.value))
    print(f"Load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    started = time.perf_counter()
    generate_history(incidents=args.incidents, days=args.days)
    elapsed = time.perf_counter() - started
    with connection.cursor() as cursor:  # what autovacuum would do after a bulk load
        cursor.execute("ANALYZE")
    print(
        f"History: {Incident.objects.count()} incidents over {args.days} days, {Review.objects.count()} reviews, "
        f"{ActionItem.objects.count()} action items, generated in {elapsed:.1f} s "
        f"(PostgreSQL {DB_URL.rsplit('/', 1)[-1]})"
    )
    client = Client()
    client.force_login(User.objects.get(username="manager"))
    for label, url in (
        ("manager page, 12 weeks", "/incidents/reviews/"),
        ("manager page, 52 weeks", "/incidents/reviews/?weeks=52"),
        ("manager page, 12 weeks, one service", "/incidents/reviews/?service=postgresql"),
        ("trend CSV (incidents per week, 52 w)", "/incidents/reviews/trends/incidents-per-week.csv?weeks=52"),
    ):
        for _ in range(2):
            assert client.get(url).status_code == 200
        timing = timed(lambda url=url: client.get(url), args.repeat)
        assert timing.last.status_code == 200
        print(timing.line(label, width=40))
    review = Review.objects.select_related("incident").order_by("-id").first()
    for label, url in (
        ("review page", f"/incidents/{review.incident.reference}/review/"),
        ("Markdown export", f"/incidents/{review.incident.reference}/review.md"),
    ):
        client.get(url)
        timing = timed(lambda url=url: client.get(url), args.repeat)
        assert timing.last.status_code == 200
        print(timing.line(label, width=40))


if __name__ == "__main__":
    main()
