from django.core.files.uploadedfile import SimpleUploadedFile

from runbooks.models import Runbook
from tests.permissions import Case
from tests.runbooks.factories import awaiting_run, make_runbook, start, system_admin


def _steps(prefix_total: int = 1) -> dict:
    return {
        "steps-TOTAL_FORMS": "1",
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "500",
        "steps-0-title": "Look at the queue",
    }


def _create_data(kwargs) -> dict:
    return {"title": f"Matrix runbook {Runbook.objects.count() + 1}", **_steps()}


def _runbook(user) -> dict:
    return {"pk": make_runbook().pk}


def _edit_data(kwargs) -> dict:
    return {"title": f"Matrix edited {kwargs['pk']}", **_steps()}


def _execution(user) -> dict:
    return {"pk": start(make_runbook()).pk, "step": 1}


def _execution_status(user) -> dict:
    return {"pk": start(make_runbook()).pk, "to": "paused"}


def _action_execution(user) -> dict:
    runbook = make_runbook(action="redis_llen", params={"queue": "jobs"}, action_step=1)
    return {"pk": start(runbook).pk, "step": 1}


def _awaiting(user) -> dict:
    execution = start(make_runbook(action="k8s_scale", action_step=1))
    run = awaiting_run(execution.step_runs.get(order=1), requested_by=system_admin())
    return {"pk": execution.pk, "run_pk": run.pk}


def _approve(user) -> dict:
    return _awaiting(user) | {"decision": "approve"}


def _check(user) -> dict:
    from tests.healthchecks.factories import make_check

    return {"check_pk": make_check().pk}


def _bound_check(user) -> dict:
    from runbooks.remediation import binding_save

    kwargs = _check(user)
    from healthchecks.models import Check

    check = Check.objects.get(pk=kwargs["check_pk"])
    binding_save(
        actor=system_admin(),
        check=check,
        action="run_check",
        params={"check_id": check.pk},
        cooldown_seconds=60,
        max_per_hour=2,
    )
    return kwargs


def _binding_data(kwargs) -> dict:
    # run_check touches no external target: valid whatever the allowlist.
    return {
        "action": "run_check",
        "params": f'{{"check_id": {kwargs["check_pk"]}}}',
        "cooldown_seconds": "600",
        "max_per_hour": "2",
        "enabled": "on",
    }


CASES = [
    Case("runbooks:remediation_edit", "config.edit", setup=_check, data=_binding_data),
    Case("runbooks:remediation_delete", "config.edit", setup=_bound_check),
    Case("runbooks:create", "config.edit", data=_create_data),
    Case("runbooks:edit", "config.edit", setup=_runbook, data=_edit_data),
    Case(
        "runbooks:import",
        "config.edit",
        ok_statuses=frozenset({200}),
        data=lambda kwargs: {"file": SimpleUploadedFile("ops.md", b"## Fix it\n\n1. one\n2. two\n")},
    ),
    Case("runbooks:start", "runbook.run", setup=_runbook),
    Case("runbooks:step_mark", "runbook.run", setup=_execution, data=lambda kwargs: {"state": "done"}),
    Case("runbooks:set_status", "runbook.run", setup=_execution_status),
    Case(
        "runbooks:action_request", "remediation.request", setup=_action_execution, data=lambda kwargs: {"queue": "jobs"}
    ),
    Case("runbooks:action_decide", "remediation.approve", setup=_approve),
    Case(
        "runbooks:action_override",
        "remediation.request",
        setup=_awaiting,
        data=lambda kwargs: {"reason": "The site is down, no one else is awake"},
    ),
]
