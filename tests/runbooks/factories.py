from django.contrib.auth.models import Group
from django.utils import timezone

from opsconsole.models import User
from runbooks import execution, services
from runbooks.models import ActionRun, Runbook


def system_admin() -> User:
    """A setup user holding every capability (setup is not what a test checks)."""
    admin = User.objects.filter(username="rb-setup").first()
    if admin is None:
        admin = User.objects.create_user(username="rb-setup", password="pw-for-tests-1")
        admin.groups.add(Group.objects.get_or_create(name="Admin")[0])
    return admin


def make_runbook(
    title: str | None = None,
    steps: int = 3,
    *,
    action: str = "",
    params: dict | None = None,
    action_step: int = 2,
    **fields,
) -> Runbook:
    title = title or f"Runbook {Runbook.objects.count() + 1}"
    specs = [
        services.StepSpec(
            f"Step {n}",
            instructions=f"Do thing **{n}**",
            command=f"echo {n}" if n % 2 else "",
            action=action if n == action_step else "",
            action_params=(params or {}) if n == action_step else {},
        )
        for n in range(1, steps + 1)
    ]
    runbook, _ = services.runbook_save(
        actor=system_admin(),
        runbook=None,
        title=title,
        symptoms=fields.pop("symptoms", "Queue is backing up"),
        steps=specs,
        **fields,
    )
    return runbook


def start(runbook: Runbook, incident=None, actor=None):
    return execution.execution_start(actor=actor or system_admin(), runbook=runbook, incident=incident)


def awaiting_run(step_run, requested_by, action="k8s_scale", params=None) -> ActionRun:
    return ActionRun.objects.create(
        step_run=step_run,
        incident=step_run.execution.incident,
        action=action,
        params=params or {"namespace": "prod", "deployment": "web", "replicas": 5},
        destructive=True,
        dry_run="deployment prod/web: replicas 3 → 5",
        status=ActionRun.Status.AWAITING_APPROVAL,
        requested_by=requested_by,
        requested_at=timezone.now(),
    )
