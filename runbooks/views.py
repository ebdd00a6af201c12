"""Runbook pages: list and search, detail, edit (a new version), history, import."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET

from opsconsole.http import HtmxHttpRequest
from opsconsole.models import Service
from opsconsole.roles import has_capability, requires

from . import importer, selectors, services
from .forms import ImportForm, RunbookForm, StartForm, StepForm, StepFormSet
from .models import Runbook, RunbookVersion


@require_GET
@requires("read")
def index(request: HtmxHttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")
    service = request.GET.get("service", "")
    runbooks = selectors.runbook_list(
        query, service_id=int(service) if service.isdigit() else None, tag=request.GET.get("tag", "")[:40]
    )[:200]
    context = {
        "runbooks": runbooks,
        "q": query,
        "can_edit": has_capability(request.user, "config.edit"),
        "services": Service.objects.order_by("name"),
        "service": service,
        # Carried from a check's page to the runbook's start form.
        "check": request.GET.get("check", "") if request.GET.get("check", "").isdigit() else "",
    }
    template = "runbooks/index.html#results" if request.htmx else "runbooks/index.html"
    return render(request, template, context)


@require_GET
@requires("read")
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    runbook = get_object_or_404(Runbook.objects.select_related("current_version"), pk=pk)
    runbook = selectors.runbook_detail(runbook.pk)
    steps = selectors.version_steps(runbook.current_version) if runbook.current_version else []
    return render(
        request,
        "runbooks/detail.html",
        {
            "runbook": runbook,
            "version": runbook.current_version,
            "steps": steps,
            "executions": selectors.recent_executions(runbook),
            "can_edit": has_capability(request.user, "config.edit"),
            "can_run": has_capability(request.user, "runbook.run"),
            # Pre-linked from a check's page: ?check=<id>&incident=<reference>.
            "start_form": StartForm(
                initial={
                    "incident": request.GET.get("incident", "")[:24],
                    "check_id": request.GET.get("check") if request.GET.get("check", "").isdigit() else None,
                }
            ),
            "start_check": _start_check(request.GET.get("check", "")),
        },
    )


def _start_check(value: str):
    if not value.isdigit():
        return None
    from healthchecks.models import Check

    return Check.objects.select_related("service").filter(pk=int(value)).first()


@require_GET
@requires("read")
def version(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    version = get_object_or_404(
        RunbookVersion.objects.select_related("runbook", "created_by"), runbook_id=pk, number=number
    )
    return render(
        request,
        "runbooks/version.html",
        {"runbook": version.runbook, "version": version, "steps": selectors.version_steps(version)},
    )


@require_GET
@requires("read")
def history(request: HttpRequest, pk: int) -> HttpResponse:
    runbook = get_object_or_404(Runbook, pk=pk)
    return render(
        request, "runbooks/history.html", {"runbook": runbook, "versions": selectors.runbook_history(runbook)}
    )


def _initial(runbook: Runbook | None) -> tuple[dict, list[dict]]:
    if runbook is None or runbook.current_version is None:
        return {}, []
    import json

    steps = [
        {
            "title": s.title,
            "instructions": s.instructions,
            "command": s.command,
            "action": s.action,
            "action_params": json.dumps(s.action_params) if s.action_params else "",
        }
        for s in selectors.version_steps(runbook.current_version)
    ]
    return {
        "title": runbook.title,
        "symptoms": runbook.symptoms,
        "services": list(runbook.services.all()),
        "tags": ", ".join(runbook.tags),
        "base_version": runbook.current_version.number,
    }, steps


def _move_step(post, move: str) -> tuple[dict, str]:
    """`move` is "<index>-up" or "<index>-down" (0-based form index). Returns
    the POST data with the two forms' fields swapped, and the button to focus
    ("<new index>-<dir>"). Bad values move nothing."""
    data = post.copy()
    index, _, direction = move.partition("-")
    total = post.get("steps-TOTAL_FORMS", "")
    if not (index.isdigit() and total.isdigit() and direction in ("up", "down")):
        return data, ""
    i, total = int(index), min(int(total), 1000)
    j = i - 1 if direction == "up" else i + 1
    if not (0 <= i < total and 0 <= j < total):
        return data, ""
    for field in [*StepForm.base_fields, "DELETE"]:
        a, b = f"steps-{i}-{field}", f"steps-{j}-{field}"
        va, vb = data.getlist(a), data.getlist(b)
        data.setlist(a, vb)
        data.setlist(b, va)
    # Keyboard focus follows the step: its button of the same direction, or
    # the other one when it reached an end.
    reached_end = (direction == "up" and j == 0) or (direction == "down" and j == total - 1)
    return data, f"{j}-{ ({'up': 'down', 'down': 'up'}[direction] if reached_end else direction) }"


@requires("config.edit")
def edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    runbook = get_object_or_404(Runbook.objects.select_related("current_version"), pk=pk) if pk else None
    initial, step_initial = _initial(runbook)
    move = request.POST.get("move", "") if request.method == "POST" else ""
    if move:
        # Up/down: the same form again with two steps swapped, unsaved edits
        # kept; Save then writes the next version like any other edit.
        data, moved_to = _move_step(request.POST, move)
        form = RunbookForm(data, initial=initial)
        steps = StepFormSet(data, initial=step_initial, prefix="steps")
        context = {"runbook": runbook, "form": form, "steps": steps, "moved": moved_to}
        return render(request, "runbooks/edit.html", context)
    form = RunbookForm(request.POST or None, initial=initial)
    steps = StepFormSet(request.POST or None, initial=step_initial, prefix="steps")
    if request.method == "POST" and form.is_valid() and steps.is_valid():
        specs = [
            services.StepSpec(
                **{k: f.cleaned_data[k] for k in ("title", "instructions", "command", "action", "action_params")}
            )
            for f in steps.forms
            if f.cleaned_data and not f.cleaned_data.get("DELETE")
        ]
        try:
            runbook, changed = services.runbook_save(
                actor=request.user,
                runbook=runbook,
                title=form.cleaned_data["title"],
                symptoms=form.cleaned_data["symptoms"],
                steps=specs,
                services=form.cleaned_data["services"],
                tags=form.tag_list(),
                change_note=form.cleaned_data["change_note"],
                base_version=form.cleaned_data["base_version"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Saved version {runbook.current_version.number}." if changed else "No changes.")
            return redirect("runbooks:detail", pk=runbook.pk)
    return render(request, "runbooks/edit.html", {"runbook": runbook, "form": form, "steps": steps})


@requires("config.edit")
def import_view(request: HttpRequest) -> HttpResponse:
    form = ImportForm(request.POST or None, request.FILES or None)
    outcomes = None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        data = upload.read(importer.settings.RUNBOOK_IMPORT_MAX_BYTES + 1)
        outcomes = importer.import_document(
            data, upload.name[:200], actor=request.user, dry_run=form.cleaned_data["dry_run"]
        )
    return render(request, "runbooks/import.html", {"form": form, "outcomes": outcomes})
