"""Demo runbooks: the seed operations guides imported by the Markdown importer,
with the queue-backlog runbook's scaling step bound to the scale action, and one
auto-remediation binding on a demo check. Idempotent: a second run imports
nothing new, writes no version and leaves an existing binding as it is."""

import io
from dataclasses import asdict
from pathlib import Path

from django.conf import settings

from opsconsole.models import Service, User

from . import remediation, services
from .importer import import_runbooks, read_document
from .models import RemediationBinding, Runbook

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
    _bind_demo_remediation(stdout)


# (service slug, check name): the demo check that gets an automatic action.
REMEDIATED_CHECK = ("ops-console", "healthz")


def _bind_demo_remediation(stdout) -> None:
    """When the console's own healthz turns critical, probe it again at once: the
    non-destructive "run a health check now" needs no allowlist entry (the demo
    configures none), so the binding is valid on any machine; a blip then shows
    as a recovery within seconds instead of waiting for the next interval."""
    from healthchecks import demo as check_demo
    from healthchecks.models import Check

    # seed_demo seeds apps in INSTALLED_APPS order, runbooks before healthchecks:
    # make the demo checks first (their seed is idempotent), quietly, so that the
    # first run already binds and the second finds everything in place.
    check_demo.seed(io.StringIO())
    slug, name = REMEDIATED_CHECK
    check = Check.objects.filter(service__slug=slug, name=name).first()
    admin = User.objects.filter(username="admin").first()  # made by seed_demo, holds config.edit
    if check is None or admin is None or RemediationBinding.objects.filter(check_ref=check).exists():
        return  # a binding someone changed since is theirs: never overwritten
    remediation.binding_save(
        actor=admin,
        check=check,
        action="run_check",
        params={"check_id": check.pk},
        cooldown_seconds=300,
        max_per_hour=4,
    )
    stdout.write(f"Runbooks: check “{name}” re-probes itself automatically when critical.")
