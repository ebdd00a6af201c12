"""Demo runbooks: the seed operations guides imported by the Markdown importer,
with the queue-backlog runbook's scaling step bound to the scale action.
Idempotent: a second run imports nothing new and writes no version."""

from dataclasses import asdict
from pathlib import Path

from django.conf import settings

from opsconsole.models import Service

from . import services
from .importer import import_runbooks, read_document
from .models import Runbook

# The copies kept in the repository (checklists' fixtures), so `make run` needs nothing outside it.
SEEDS = Path(settings.BASE_DIR) / "checklists" / "fixtures" / "seeds"

# (runbook title, step number, action, parameters offered, services)
BINDINGS = [
    (
        "Messenger Queue Backlog",
        4,
        "k8s_scale",
        {"namespace": "prod", "deployment": "crm-worker", "replicas": 5},
        ["message-queue", "order-worker"],
    ),
    (
        "Kafka Consumer Lag",
        3,
        "k8s_restart",
        {"namespace": "prod", "deployment": "order-management-service"},
        ["order-worker", "message-queue"],
    ),
    ("High Queue Backlog", 1, "redis_llen", {"queue": "queues:default"}, ["redis"]),
]


def seed(stdout) -> None:
    created = 0
    for path in sorted(SEEDS.glob("*.txt")):
        outcomes = import_runbooks(read_document(path.read_bytes(), path.name), path.name, actor=None)
        created += sum(o.verb == "created" for o in outcomes)
    for title, number, action, params, slugs in BINDINGS:
        runbook = Runbook.objects.filter(title=title).select_related("current_version").first()
        if runbook is None:
            continue
        steps = [services.StepSpec(**{k: v for k, v in s.items()}) for s in services._steps_of(runbook.current_version)]
        if number > len(steps) or steps[number - 1].action == action:
            continue
        steps[number - 1] = services.StepSpec(
            **(asdict(steps[number - 1]) | {"action": action, "action_params": params})
        )
        services.runbook_save(
            actor=None,
            runbook=runbook,
            title=runbook.title,
            symptoms=runbook.symptoms,
            steps=steps,
            services=Service.objects.filter(slug__in=slugs),
            tags=[*runbook.tags, "automated"],
            change_note=f"step {number} runs {action}",
            check_permission=False,
        )
    stdout.write(f"Runbooks: {created} imported, {Runbook.objects.count()} in all.")
