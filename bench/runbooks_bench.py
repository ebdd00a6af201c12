"""Runbook figures: importing a 10,000-step Markdown file, and the query count
and time of an execution page as its step count grows.

    .venv/bin/python bench/runbooks_bench.py [--steps 10000] [--page-steps 20,200,1000]

Environment: BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/opsconsole_bench_runbooks; the database is dropped
and re-created), BENCH_REDIS_URL (default redis://127.0.0.1:6379/4).
Targets (issue #12): the import under 10 s; the same number of queries at every size.
"""

import argparse
import time

from common import bench_settings, setup_django

DB_URL = bench_settings("opsconsole_bench_runbooks", redis_db=4)


def document(steps: int) -> bytes:
    """Sections of 20 numbered steps, every fifth with a command block."""
    parts = ["# Generated operations guide\n"]
    for section in range(steps // 20):
        parts.append(f"\n## Scenario {section}: Queue {section} backlog\n\n**Symptoms:**\n- queue {section} grows\n\n")
        for n in range(1, 21):
            parts.append(f"{n}. Check `queue-{section}` item {n} and note the **lag**.\n")
            if n % 5 == 0:
                parts.append(f"   ```bash\n   redis-cli LLEN queues:{section}\n   ```\n")
    return "".join(parts).encode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--page-steps", default="20,200,1000")
    args = parser.parse_args()
    setup_django(DB_URL)
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from opsconsole.models import User
    from runbooks import execution, services
    from runbooks.importer import import_document
    from runbooks.models import RunbookStep

    data = document(args.steps)
    started = time.perf_counter()
    outcomes = import_document(data, "generated.md", actor=None)
    elapsed = time.perf_counter() - started
    imported = RunbookStep.objects.count()
    print(
        f"import: {len(data) / 1e6:.1f} MB, {imported} steps in {len(outcomes)} runbooks: {elapsed:.2f} s "
        f"({'OK' if elapsed < 10 and imported == args.steps else 'OVER TARGET'}, target < 10 s)"
    )
    started = time.perf_counter()
    again = import_document(data, "generated.md", actor=None)
    print(
        f"re-import (nothing changes): {time.perf_counter() - started:.2f} s, "
        f"{sum(o.verb == 'unchanged' for o in again)} unchanged"
    )

    user = User.objects.create_user(username="bench-sre", password="x")
    user.groups.add(Group.objects.get_or_create(name="SRE")[0])
    client = Client()
    client.force_login(user)
    for size in [int(s) for s in args.page_steps.split(",")]:
        specs = [
            services.StepSpec(
                f"Step {n}", instructions=f"Do **{n}**", command=f"echo {n}", action="k8s_scale" if n == 2 else ""
            )
            for n in range(1, size + 1)
        ]
        runbook, _ = services.runbook_save(actor=user, runbook=None, title=f"Bench {size}", symptoms="", steps=specs)
        run = execution.execution_start(actor=user, runbook=runbook)
        for step_run in run.step_runs.filter(order__lte=size // 2):
            execution.step_mark(actor=user, step_run_id=step_run.pk, state="done")
        client.get(f"/runbooks/executions/{run.pk}/")  # warm caches
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(f"/runbooks/executions/{run.pk}/")
            elapsed = time.perf_counter() - started
        assert response.status_code == 200
        print(
            f"execution page, {size} steps: {len(queries)} queries, {elapsed * 1000:.0f} ms, "
            f"{len(response.content) / 1e3:.0f} kB"
        )


if __name__ == "__main__":
    main()
