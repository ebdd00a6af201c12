"""Executions: following a pinned runbook version step by step, and the
actions the console carries out for it. Each write owns its transaction,
its audit entry and its line on the linked incident's timeline.

Concurrency rules:
- marking a step is one conditional UPDATE (`WHERE state = 'pending'` and
  the execution running): two people never overwrite each other's mark;
- pause/resume, approve/reject/override are conditional UPDATEs on the
  expected status; the rowcount says who won;
- the worker claims an action run `queued → running` by a conditional
  UPDATE; a redelivered task finds it running and never applies the action
  a second time unless the action is idempotent (or can verify it already
  took effect).
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.utils import timezone

from opsconsole import audit
from opsconsole.roles import check_capability

from .actions import REGISTRY, ActionError, Reporter
from .models import ActionRun, Execution, Runbook, RunbookStep, StepRun

log = logging.getLogger(__name__)
Status = Execution.Status
AStatus = ActionRun.Status


class ExecutionError(ValidationError):
    """A refused action with a message for the person who asked."""


def _timeline(incident, text: str, *, actor=None, kind: str = "runbook", data: dict | None = None) -> None:
    if incident is None:
        return
    from incidents.services import timeline_add_event

    timeline_add_event(incident=incident, kind=kind, text=text, actor=actor, data=data or {})


def _user(actor):
    return actor if getattr(actor, "is_authenticated", False) else None


# --- executions -------------------------------------------------------------------


def execution_start(*, actor, runbook: Runbook, incident=None, check=None) -> Execution:
    """Pin the runbook's current version and lay out its steps (one bulk INSERT)."""
    check_capability(actor, "runbook.run")
    version = runbook.current_version
    if version is None:
        raise ExecutionError("This runbook has no saved version yet.")
    now = timezone.now()
    with transaction.atomic():
        execution = Execution.objects.create(
            runbook=runbook,
            version=version,
            incident=incident,
            check_ref=check,
            started_by=_user(actor),
            started_at=now,
        )
        steps = RunbookStep.objects.filter(version=version).order_by("order").values_list("pk", "order")
        StepRun.objects.bulk_create(
            [StepRun(execution=execution, step_id=pk, order=order) for pk, order in steps], batch_size=2000
        )
        audit.record(
            actor,
            "runbooks.execution_start",
            execution,
            after={
                "runbook": runbook.pk,
                "version": version.number,
                "incident": getattr(incident, "pk", None),
                "check": getattr(check, "pk", None),
            },
        )
        _timeline(
            incident,
            f"Runbook **{runbook.title}** (v{version.number}) started by {actor}.",
            actor=actor,
            data={"execution": execution.pk, "runbook": runbook.pk, "version": version.number},
        )
    return execution


def step_mark(*, actor, step_run_id: int, state: str, note: str = "") -> StepRun:
    check_capability(actor, "runbook.run")
    if state not in (StepRun.State.DONE, StepRun.State.SKIPPED, StepRun.State.FAILED):
        raise ExecutionError("Mark a step done, skipped or failed.")
    note = note.strip()[:1000]
    if state != StepRun.State.DONE and not note:
        raise ExecutionError("Say why: a skipped step needs a reason, a failed one a note.")
    now = timezone.now()
    with transaction.atomic():
        changed = StepRun.objects.filter(
            pk=step_run_id, state=StepRun.State.PENDING, execution__status=Status.RUNNING
        ).update(state=state, note=note, by=_user(actor), at=now)
        step_run = StepRun.objects.select_related("execution__incident", "step", "by").get(pk=step_run_id)
        if not changed:
            if step_run.execution.status != Status.RUNNING:
                raise ExecutionError(f"The execution is {step_run.execution.get_status_display().lower()}.")
            raise ExecutionError(f"{step_run.by or 'Someone'} already marked this step {step_run.get_state_display()}.")
        execution = step_run.execution
        audit.record(
            actor, "runbooks.step_mark", execution, after={"step": step_run.order, "state": state, "note": note}
        )
        verb = {"done": "done", "skipped": "skipped", "failed": "failed"}[state]
        _timeline(
            execution.incident,
            f"Step {step_run.order} “{step_run.step.title}” {verb} by {actor}" + (f": {note}" if note else "."),
            actor=actor,
            data={"execution": execution.pk, "step": step_run.order, "state": state},
        )
        _complete_if_done(execution, now)
    return step_run


def _complete_if_done(execution: Execution, now) -> None:
    if not StepRun.objects.filter(execution=execution, state=StepRun.State.PENDING).exists():
        if Execution.objects.filter(pk=execution.pk, status=Status.RUNNING).update(
            status=Status.COMPLETED, finished_at=now
        ):
            _timeline(
                execution.incident,
                f"Runbook **{execution.runbook.title}** completed.",
                data={"execution": execution.pk},
            )


def execution_set_status(*, actor, execution: Execution, to: str, reason: str = "") -> Execution:
    """Pause, resume or abort. Anyone who may run runbooks may resume another's pause."""
    check_capability(actor, "runbook.run")
    allowed_from = {
        Status.PAUSED: [Status.RUNNING],
        Status.RUNNING: [Status.PAUSED],
        Status.ABORTED: [Status.RUNNING, Status.PAUSED],
    }
    if to not in allowed_from:
        raise ExecutionError("Unknown status.")
    now = timezone.now()
    with transaction.atomic():
        changed = Execution.objects.filter(pk=execution.pk, status__in=allowed_from[to]).update(
            status=to,
            status_changed_by=_user(actor),
            status_changed_at=now,
            pause_reason=reason[:300],
            finished_at=now if to == Status.ABORTED else None,
        )
        execution.refresh_from_db()
        if not changed:
            raise ExecutionError(f"The execution is already {execution.get_status_display().lower()}.")
        audit.record(actor, f"runbooks.execution_{to}", execution, after={"status": to, "reason": reason[:300]})
        word = {"paused": "paused", "running": "resumed", "aborted": "aborted"}[to]
        _timeline(
            execution.incident,
            f"Runbook **{execution.runbook.title}** {word} by {actor}" + (f": {reason}" if reason else "."),
            actor=actor,
            data={"execution": execution.pk},
        )
    return execution


# --- actions ----------------------------------------------------------------------


def action_request(
    *, actor, step_run: StepRun, data: dict, verify_check_id: int | None = None, verify_settle: int | None = None
) -> ActionRun:
    """Validate, pin (prepare) and dry-run the step's action. Non-destructive:
    queued at once; destructive: waits for a second person's approval.
    `verify_check_id`: the check to probe again `verify_settle` seconds after
    success (did the fix hold); None: no verification."""
    check_capability(actor, "remediation.request")
    action = REGISTRY.get(step_run.step.action)
    if action is None:
        raise ExecutionError("This step has no action.")
    if step_run.execution.status != Status.RUNNING:
        raise ExecutionError(f"The execution is {step_run.execution.get_status_display().lower()}.")
    verify_check = _verify_check(verify_check_id, verify_settle)
    params = action.clean(data)  # ValidationError with every message; nothing written
    try:
        if action.prepare is not None:
            params = action.prepare(params)
        preview = action.preview(params)
    except ActionError as exc:
        raise ExecutionError(f"Dry run failed: {exc}") from exc
    destructive = action.is_destructive(params)
    now = timezone.now()
    incident = step_run.execution.incident
    with transaction.atomic():
        run = ActionRun.objects.create(
            step_run=step_run,
            incident=incident,
            action=action.key,
            params=params,
            destructive=destructive,
            dry_run=preview,
            status=AStatus.AWAITING_APPROVAL if destructive else AStatus.QUEUED,
            requested_by=_user(actor),
            requested_at=now,
            verify_check=verify_check,
            verify_settle_seconds=verify_settle if verify_check else None,
        )
        audit.record(
            actor,
            "runbooks.action_request",
            run,
            after={
                "action": action.key,
                "params": params,
                "destructive": destructive,
                "dry_run": preview,
                "verify_check": getattr(verify_check, "pk", None),
                "verify_settle_seconds": verify_settle if verify_check else None,
            },
        )
        _timeline(
            incident,
            f"{actor} requested **{action.label}**: {preview}" + (" — awaiting approval." if destructive else "."),
            actor=actor,
            kind="remediation",
            data={"action_run": run.pk, "action": action.key},
        )
        if not destructive:
            _enqueue(run)
    return run


def _verify_check(check_id: int | None, settle: int | None):
    if check_id is None:
        return None
    from healthchecks.models import Check

    if settle is None or not 0 <= settle <= 3600:
        raise ExecutionError("Settle time: between 0 and 3600 seconds.")
    check = Check.objects.filter(pk=check_id).first()
    if check is None:
        raise ExecutionError("No such check to verify the fix with.")
    return check


def _enqueue(run: ActionRun) -> None:
    from .tasks import perform_action

    transaction.on_commit(lambda: perform_action.delay(run.pk))


def action_approve(*, actor, run: ActionRun) -> ActionRun:
    check_capability(actor, "remediation.approve")
    if run.requested_by_id == getattr(actor, "pk", None):
        raise PermissionDenied("Four eyes: a second person must approve your own request.")
    return _release(actor, run, "runbooks.action_approve", "approved")


def action_override(*, actor, run: ActionRun, reason: str) -> ActionRun:
    """The commander of an open SEV-1 linked to the execution may skip the second pair of eyes."""
    check_capability(actor, "remediation.request")
    reason = reason.strip()
    if len(reason) < 10:
        raise ExecutionError("Write why this cannot wait for a second person (10 characters at least).")
    incident = run.incident
    from incidents.services import open_statuses

    if (
        incident is None
        or incident.commander_id != actor.pk
        or incident.severity_id != 1
        or incident.status not in open_statuses()
    ):
        raise PermissionDenied("Only the commander of an open SEV-1 incident may override the approval.")
    return _release(actor, run, "runbooks.action_override", "approved by override", reason=reason[:500])


def _release(actor, run: ActionRun, audit_action: str, word: str, reason: str = "") -> ActionRun:
    now = timezone.now()
    with transaction.atomic():
        changed = ActionRun.objects.filter(pk=run.pk, status=AStatus.AWAITING_APPROVAL).update(
            status=AStatus.QUEUED, approved_by=actor, approved_at=now, override_reason=reason
        )
        run.refresh_from_db()
        if not changed:
            raise ExecutionError(f"This request is already {run.get_status_display().lower()}.")
        audit.record(actor, audit_action, run, after={"action": run.action, "params": run.params, "reason": reason})
        _timeline(
            run.incident,
            f"{actor} {word} **{REGISTRY[run.action].label}** ({run.dry_run})" + (f": {reason}" if reason else "."),
            actor=actor,
            kind="remediation",
            data={"action_run": run.pk},
        )
        _enqueue(run)
    return run


def action_reject(*, actor, run: ActionRun, reason: str = "") -> ActionRun:
    check_capability(actor, "remediation.approve")
    with transaction.atomic():
        changed = ActionRun.objects.filter(pk=run.pk, status=AStatus.AWAITING_APPROVAL).update(
            status=AStatus.REJECTED, approved_by=None, finished_at=timezone.now(), output=reason[:500]
        )
        run.refresh_from_db()
        if not changed:
            raise ExecutionError(f"This request is already {run.get_status_display().lower()}.")
        audit.record(actor, "runbooks.action_reject", run, after={"reason": reason[:500]})
        _timeline(
            run.incident,
            f"{actor} rejected **{REGISTRY[run.action].label}**" + (f": {reason}" if reason else "."),
            actor=actor,
            kind="remediation",
            data={"action_run": run.pk},
        )
    return run


def _append(run_id: int, progress: int | None, line: str) -> None:
    fields = {}
    if line:
        fields["output"] = Concat(F("output"), Value(line + "\n"))
    if progress is not None:
        fields["progress"] = max(0, min(100, progress))
    if fields:
        ActionRun.objects.filter(pk=run_id, status=AStatus.RUNNING).update(**fields)


def perform_action(run_id: int) -> str:
    """The worker's side. Guarantee: a redelivered or duplicate task never
    applies a non-idempotent action twice (see the module docstring)."""
    now = timezone.now()
    claimed = ActionRun.objects.filter(pk=run_id, status=AStatus.QUEUED).update(
        status=AStatus.RUNNING, started_at=now, attempts=F("attempts") + 1
    )
    run = ActionRun.objects.select_related("step_run__execution", "incident").filter(pk=run_id).first()
    if run is None:
        return "gone"
    action = REGISTRY[run.action]
    if not claimed:
        if run.status != AStatus.RUNNING:
            return f"nothing to do: {run.status}"
        # A task found its run already running: the worker that claimed it died
        # mid-action (or this is a duplicate delivery).
        ActionRun.objects.filter(pk=run_id).update(attempts=F("attempts") + 1)
        applied = None
        if action.verify is not None:
            try:
                applied = action.verify(run.params)
            except ActionError:
                applied = None
        if applied:
            _append(run_id, 100, "a previous attempt was interrupted; the change is in place, not applied again")
            return _finish(run, AStatus.SUCCEEDED, "verified after interruption")
        if not action.is_idempotent(run.params):
            _append(
                run_id,
                None,
                "the worker was lost mid-action: outcome unknown, NOT applied again. "
                "Check the target and request the action again if needed.",
            )
            return _finish(run, AStatus.INTERRUPTED, "interrupted")
        _append(run_id, 0, "a previous attempt was interrupted; this action is idempotent, applying it again")
    report = Reporter(lambda progress, line: _append(run_id, progress, line))
    try:
        summary = action.run(run.params, report, str(run.idempotency_key))
    except ActionError as exc:
        _append(run_id, None, f"failed: {exc}")
        return _finish(run, AStatus.FAILED, str(exc))
    except Exception as exc:  # an unexpected error must still end the run, never leave it "running"
        log.exception("runbook action crashed", extra={"action_run": run_id})
        _append(run_id, None, f"failed: {type(exc).__name__}")
        return _finish(run, AStatus.FAILED, type(exc).__name__)
    return _finish(run, AStatus.SUCCEEDED, summary)


def _finish(run: ActionRun, status: str, summary: str) -> str:
    now = timezone.now()
    with transaction.atomic():
        changed = ActionRun.objects.filter(pk=run.pk, status=AStatus.RUNNING).update(
            status=status, finished_at=now, progress=100 if status == AStatus.SUCCEEDED else F("progress")
        )
        if not changed:
            return "already finished"
        audit.record(None, f"runbooks.action_{status}", run, after={"action": run.action, "summary": summary[:500]})
        label = REGISTRY[run.action].label
        _timeline(
            run.incident,
            f"**{label}** {ActionRun.Status(status).label.lower()}: {summary}",
            kind="remediation",
            data={"action_run": run.pk, "status": status},
        )
        step_run = run.step_run
        if step_run is not None and status == AStatus.SUCCEEDED:
            StepRun.objects.filter(pk=step_run.pk, state=StepRun.State.PENDING).update(
                state=StepRun.State.DONE,
                note=f"{label}: {summary}"[:1000],
                by_id=run.requested_by_id,
                at=now,
            )
            _complete_if_done(step_run.execution, now)
        if status == AStatus.SUCCEEDED:
            _schedule_verification(run)
    return status


def _schedule_verification(run: ActionRun) -> None:
    """The check the person picked (with its settle time); for an automatic run, its own check."""
    from django.conf import settings

    check_id = run.verify_check_id or (run.check_ref_id if run.step_run_id is None else None)
    if check_id is None or run.action == "run_check":
        return
    from .tasks import verify_fix

    countdown = (
        run.verify_settle_seconds if run.verify_settle_seconds is not None else settings.RUNBOOK_VERIFY_SETTLE_SECONDS
    )
    transaction.on_commit(lambda: verify_fix.apply_async((run.pk, check_id), countdown=countdown))


def verify_fix(run_id: int, check_id: int) -> str:
    """Run the bound check again after the settle time; record whether the fix held."""
    from healthchecks.models import Check
    from healthchecks.probes import ProbeSpec, run_batch_sync
    from healthchecks.services import record_results

    run = ActionRun.objects.select_related("step_run__execution", "incident").filter(pk=run_id).first()
    check = Check.objects.filter(pk=check_id).first()
    if run is None or check is None:
        return "gone"
    result = run_batch_sync([ProbeSpec.from_check(check)])[0]
    verdict = "fix verified" if result.state == "ok" else "fix did not hold"
    with transaction.atomic():
        record_results([(check.pk, result)], reschedule=False)
        execution = run.step_run.execution if run.step_run else None
        if execution is not None:
            Execution.objects.filter(pk=execution.pk).update(verification=verdict)
        ActionRun.objects.filter(pk=run.pk).update(
            verification=verdict, output=Concat(F("output"), Value(f"{verdict}: {check.name} {result.state}\n"))
        )
        audit.record(None, "runbooks.fix_verification", run, after={"check": check.pk, "verdict": verdict})
        _timeline(
            run.incident,
            f"{verdict.capitalize()}: {check.name} is {result.state} ({result.summary}).",
            kind="remediation",
            data={"action_run": run.pk, "verdict": verdict},
        )
    return verdict
