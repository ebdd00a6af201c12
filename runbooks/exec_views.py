"""Execution pages: start, walk the steps, pause/resume, actions and approvals."""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from opsconsole.http import HtmxHttpRequest
from opsconsole.roles import has_capability, requires

from . import execution as svc
from . import selectors
from .actions import REGISTRY
from .forms import OverrideForm, ReasonForm, StartForm, StepMarkForm
from .models import ActionRun, Execution, Runbook, StepRun


def _visible_execution(request: HttpRequest, pk: int) -> Execution:
    """404 for an execution linked to a restricted incident the user may not see."""
    try:
        execution = selectors.execution_page(pk)
    except Execution.DoesNotExist:
        raise Http404("No such execution.") from None
    if execution.incident_id is not None:
        from incidents.selectors import visible_incidents

        if not visible_incidents(request.user).filter(pk=execution.incident_id).exists():
            raise Http404("No such execution.")
    return execution


@require_POST
@requires("runbook.run")
def start(request: HttpRequest, pk: int) -> HttpResponse:
    runbook = get_object_or_404(Runbook.objects.select_related("current_version"), pk=pk)
    form = StartForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Check the form.")
        return redirect("runbooks:detail", pk=pk)
    incident = check = None
    if form.cleaned_data["incident"]:
        from incidents.selectors import get_incident

        incident = get_incident(request.user, form.cleaned_data["incident"].strip())  # 404 when not visible
    if form.cleaned_data["check_id"]:
        from healthchecks.models import Check

        check = get_object_or_404(Check, pk=form.cleaned_data["check_id"])
    try:
        execution = svc.execution_start(actor=request.user, runbook=runbook, incident=incident, check=check)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("runbooks:detail", pk=pk)
    return redirect("runbooks:execution", pk=execution.pk)


def _page(request: HtmxHttpRequest, execution: Execution, *, partial: str = "", error: str = "", status: int = 200):
    steps = selectors.execution_steps(execution)
    progress = {"total": len(steps), "done": sum(s.state != "pending" for s in steps)}
    progress["percent"] = progress["done"] * 100 // progress["total"] if progress["total"] else 0
    actions_active = any(not a.is_finished for s in steps for a in s.action_runs.all())
    for step_run in steps:
        action = REGISTRY.get(step_run.step.action)
        if action is not None:
            step_run.action_form = action.form(initial=step_run.step.action_params, auto_id=f"s{step_run.order}_%s")
    has_actions = any(s.step.action for s in steps)
    context = {
        "verify_checks": selectors.checks_for_verification(execution) if has_actions else [],
        "verify_settle": settings.RUNBOOK_VERIFY_SETTLE_SECONDS,
        "execution": execution,
        "steps": steps,
        "progress": progress,
        "registry": REGISTRY,
        "error": error,
        "actions_active": actions_active,
        "can_run": has_capability(request.user, "runbook.run") and execution.status == "running",
        "can_pause": has_capability(request.user, "runbook.run"),
        "can_request": has_capability(request.user, "remediation.request") and execution.status == "running",
        "can_approve": has_capability(request.user, "remediation.approve"),
        "is_sev1_commander": bool(
            execution.incident
            and execution.incident.commander_id == request.user.pk
            and execution.incident.severity_id == 1
        ),
    }
    template = f"runbooks/execution.html#{partial}" if partial and request.htmx else "runbooks/execution.html"
    return render(request, template, context, status=status)


@require_GET
@requires("read")
def execution_detail(request: HttpRequest, pk: int) -> HttpResponse:
    execution = _visible_execution(request, pk)
    return _page(request, execution, partial="body" if request.GET.get("poll") else "")


def _after(request: HtmxHttpRequest, execution: Execution, error: str = "") -> HttpResponse:
    if request.htmx:
        return _page(request, execution, partial="body", error=error, status=200)
    if error:
        messages.error(request, error)
    return redirect("runbooks:execution", pk=execution.pk)


@require_POST
@requires("runbook.run")
def step_mark(request: HttpRequest, pk: int, step: int) -> HttpResponse:
    execution = _visible_execution(request, pk)
    step_run = get_object_or_404(StepRun, execution=execution, order=step)
    form = StepMarkForm(request.POST)
    error = ""
    if not form.is_valid():
        error = " ".join(e for errors in form.errors.values() for e in errors)
    else:
        try:
            svc.step_mark(
                actor=request.user,
                step_run_id=step_run.pk,
                state=form.cleaned_data["state"],
                note=form.cleaned_data["note"],
            )
        except ValidationError as exc:
            error = " ".join(exc.messages)
    return _after(request, selectors.execution_page(execution.pk), error)


@require_POST
@requires("runbook.run")
def set_status(request: HttpRequest, pk: int, to: str) -> HttpResponse:
    execution = _visible_execution(request, pk)
    form = ReasonForm(request.POST)
    error = ""
    if to not in ("paused", "running", "aborted") or not form.is_valid():
        error = "Unknown status or reason too long."
    else:
        try:
            svc.execution_set_status(actor=request.user, execution=execution, to=to, reason=form.cleaned_data["reason"])
        except ValidationError as exc:
            error = " ".join(exc.messages)
    return _after(request, selectors.execution_page(execution.pk), error)


@require_POST
@requires("remediation.request")
def action_request(request: HttpRequest, pk: int, step: int) -> HttpResponse:
    execution = _visible_execution(request, pk)
    step_run = get_object_or_404(
        StepRun.objects.select_related("step", "execution__incident"), execution=execution, order=step
    )
    error = ""
    data = request.POST.dict()
    check_raw, settle_raw = data.pop("verify_check", "").strip(), data.pop("verify_settle", "").strip()
    if (check_raw and not check_raw.isdigit()) or (settle_raw and not settle_raw.isdigit()):
        error = "Pick a check from the list and give the settle time in whole seconds."
    else:
        try:
            svc.action_request(
                actor=request.user,
                step_run=step_run,
                data=data,
                verify_check_id=int(check_raw) if check_raw else None,
                verify_settle=int(settle_raw) if settle_raw else settings.RUNBOOK_VERIFY_SETTLE_SECONDS,
            )
        except ValidationError as exc:
            error = " ".join(exc.messages)
    return _after(request, selectors.execution_page(execution.pk), error)


def _action_run(request: HttpRequest, pk: int, run_pk: int) -> tuple[Execution, ActionRun]:
    execution = _visible_execution(request, pk)
    run = get_object_or_404(ActionRun.objects.select_related("incident"), pk=run_pk, step_run__execution=execution)
    return execution, run


@require_POST
@requires("remediation.approve")
def action_decide(request: HttpRequest, pk: int, run_pk: int, decision: str) -> HttpResponse:
    execution, run = _action_run(request, pk, run_pk)
    form = ReasonForm(request.POST)
    error = ""
    try:
        if decision == "approve":
            svc.action_approve(actor=request.user, run=run)
        elif decision == "reject" and form.is_valid():
            svc.action_reject(actor=request.user, run=run, reason=form.cleaned_data["reason"])
        else:
            error = "Approve or reject."
    except (ValidationError, PermissionDenied) as exc:
        error = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
    return _after(request, selectors.execution_page(execution.pk), error)


@require_POST
@requires("remediation.request")
def action_override(request: HttpRequest, pk: int, run_pk: int) -> HttpResponse:
    execution, run = _action_run(request, pk, run_pk)
    form = OverrideForm(request.POST)
    error = ""
    if not form.is_valid():
        error = "Write why this cannot wait for a second person (10 characters at least)."
    else:
        try:
            svc.action_override(actor=request.user, run=run, reason=form.cleaned_data["reason"])
        except (ValidationError, PermissionDenied) as exc:
            error = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
    return _after(request, selectors.execution_page(execution.pk), error)
