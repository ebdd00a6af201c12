import datetime

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_POST

from opsconsole.csv_export import csv_response
from opsconsole.http import HtmxHttpRequest
from opsconsole.roles import has_capability, requires

from . import exports, selectors, services
from .forms import (
    NaForm,
    NoteForm,
    ScheduleInlineFormSet,
    StartRunForm,
    TemplateForm,
    TemplateItemFormSet,
)
from .models import ChecklistRun, ChecklistTemplate, RunItem

RUN_PAGE = "checklists/run.html"


def _run_url(run_id: int, item_id: int | None = None) -> str:
    return reverse("checklists:run", args=[run_id]) + (f"#item-{item_id}" if item_id else "")


@requires("read")
def index(request: HttpRequest) -> HttpResponse:
    context = {
        "runs": selectors.index_runs(),
        "templates": selectors.active_templates(),
        "start_form": StartRunForm(),
        "can_tick": has_capability(request.user, "checklist.tick"),
        "can_edit": has_capability(request.user, "config.edit"),
    }
    return render(request, "checklists/index.html", context)


@require_POST
@requires("checklist.tick")
def run_start(request: HttpRequest) -> HttpResponse:
    form = StartRunForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a checklist and a due time between 15 minutes and 72 hours.")
        return redirect("checklists:index")
    try:
        run = services.run_start(
            actor=request.user, template=form.cleaned_data["template"], due_within=form.due_within()
        )
    except ValidationError as error:
        messages.error(request, error.messages[0])
        return redirect("checklists:index")
    return redirect("checklists:run", pk=run.pk)


def _run_context(request: HttpRequest, run: ChecklistRun, items: list[RunItem]) -> dict:
    return {
        "run": run,
        "items": items,
        "progress": selectors.progress_of(items),
        "can_tick": has_capability(request.user, "checklist.tick") and run.is_writable,
        "can_hand_off": run.offers_handoff and has_capability(request.user, "handoff.write"),
        "since": timezone.now().isoformat(),
    }


@requires("read")
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        run = selectors.run_detail(pk)
    except ChecklistRun.DoesNotExist:
        raise Http404("No such checklist run.") from None
    return render(request, RUN_PAGE, _run_context(request, run, selectors.run_items(run.pk)))


def _parse_since(value: str) -> datetime.datetime:
    """The poller's `since`; anything unparsable means "the last minute"."""
    try:
        since = parse_datetime(value)
    except ValueError:
        since = None
    if since is not None and timezone.is_naive(since):
        since = timezone.make_aware(since, datetime.UTC)
    try:
        # An offset can push a valid-looking time past year 9999 in UTC (OverflowError).
        since = since.astimezone(datetime.UTC) if since is not None else None
    except OverflowError:
        since = None
    if since is None:
        return timezone.now() - datetime.timedelta(minutes=1)
    return since


@require_GET
@requires("read")
def run_poll(request: HttpRequest, pk: int) -> HttpResponse:
    """Cheap polling: nothing changed → 204 (htmx swaps nothing); otherwise
    out-of-band swaps of the changed items' status and the progress bar."""
    since = _parse_since(request.GET.get("since", ""))
    now = timezone.now()
    run, items = selectors.changes_since(pk, since)
    if run is None:
        raise Http404("No such checklist run.")
    if not items and run.updated_at <= since:
        return HttpResponse(status=204)
    if run.updated_at > since and not run.is_writable:
        # Signed off by someone else: the page loses its forms and Sign-off
        # button, so every open copy reloads rather than patching items.
        return HttpResponse(status=204, headers={"HX-Refresh": "true"})
    context = {
        "run": run,
        "items": items,
        "since": now.isoformat(),
        "oob": True,
        "can_tick": has_capability(request.user, "checklist.tick") and run.is_writable,
        "progress": services.run_progress(run.pk),
        "run_changed": run.updated_at > since,
    }
    return render(request, "checklists/_poll.html", context)


def _item_response(request: HtmxHttpRequest, result: services.ItemResult, partial: str) -> HttpResponse:
    """htmx: the item's partial plus the progress bar out of band; plain POST: redirect."""
    if not request.htmx:
        if result.message:
            messages.info(request, result.message)
        return redirect(_run_url(result.item.run_id, result.item.pk))
    run = result.item.run
    context = {
        "item": result.item,
        "run": run,
        "message": result.message,
        "with_progress": True,
        "progress": result.progress,
        "can_tick": has_capability(request.user, "checklist.tick") and run.is_writable,
    }
    return render(request, f"{RUN_PAGE}#{partial}", context)


def _item_action(action, request: HttpRequest, pk: int, item_pk: int, partial: str, **kwargs) -> HttpResponse:
    try:
        result = action(actor=request.user, run_id=pk, item_id=item_pk, **kwargs)
    except RunItem.DoesNotExist:
        raise Http404("No such item in this run.") from None
    return _item_response(request, result, partial)


@require_POST
@requires("checklist.tick")
def item_tick(request: HttpRequest, pk: int, item_pk: int) -> HttpResponse:
    return _item_action(services.item_tick, request, pk, item_pk, "item-status")


@require_POST
@requires("checklist.tick")
def item_reopen(request: HttpRequest, pk: int, item_pk: int) -> HttpResponse:
    return _item_action(services.item_reopen, request, pk, item_pk, "item-status")


@require_POST
@requires("checklist.tick")
def item_na(request: HttpRequest, pk: int, item_pk: int) -> HttpResponse:
    form = NaForm(request.POST)
    if not form.is_valid():
        return _item_or_page(
            request, pk, item_pk, na_error=form.reason_error(), na_typed=request.POST.get("reason", "")
        )
    return _item_action(services.item_mark_na, request, pk, item_pk, "item", reason=form.cleaned_data["reason"])


def _item_or_page(request: HtmxHttpRequest, pk: int, item_pk: int, **extra) -> HttpResponse:
    """A refused note or N/A: the item again, with the error next to the form and the
    text that was typed still in it (htmx: the item; plain POST: the whole page, 400).
    Never a flash message: it would show up later, on whatever page comes next."""
    item = get_object_or_404(
        RunItem.objects.select_related("run", "ticked_by", "note_updated_by", "health_check"),
        pk=item_pk,
        run_id=pk,
    )
    if not request.htmx:
        context = _run_context(request, item.run, selectors.run_items(pk))
        return render(request, RUN_PAGE, {**context, "error_item": item.pk, **extra}, status=400)
    context = {"item": item, "run": item.run, "can_tick": item.run.is_writable, "error_item": item.pk, **extra}
    return render(request, f"{RUN_PAGE}#item", context)


@require_POST
@requires("checklist.tick")
def item_note(request: HtmxHttpRequest, pk: int, item_pk: int) -> HttpResponse:
    form = NoteForm(request.POST)
    typed = {"note_typed": request.POST.get("note", ""), "evidence_typed": request.POST.get("evidence", "")}
    if not form.is_valid():
        return _item_or_page(request, pk, item_pk, note_error=form.error_text(), **typed)
    try:
        return _item_action(services.item_save_note, request, pk, item_pk, "item", **form.cleaned_data)
    except services.NoteConflict as conflict:
        context = {
            "item": conflict.current,
            "run": conflict.current.run,
            "conflict": conflict,
            "can_tick": True,
        }
        template = f"{RUN_PAGE}#item" if request.htmx else "checklists/note_conflict.html"
        return render(request, template, context, status=200 if request.htmx else 409)
    except ValidationError as error:
        return _item_or_page(request, pk, item_pk, note_error=error.messages[0], **typed)


@require_POST
@requires("checklist.tick")
def run_sign_off(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(ChecklistRun, pk=pk)
    try:
        services.run_sign_off(actor=request.user, run=run)
        messages.success(request, f"“{run.title}” signed off.")
    except ValidationError as error:
        messages.error(request, f"Not signed off: {error.messages[0]}")
    return redirect("checklists:run", pk=pk)


# --- Templates -----------------------------------------------------------------


@requires("read")
def template_list(request: HttpRequest) -> HttpResponse:
    context = {
        "templates": selectors.all_templates(),
        "can_edit": has_capability(request.user, "config.edit"),
    }
    return render(request, "checklists/templates.html", context)


def _edit(request: HttpRequest, template: ChecklistTemplate) -> HttpResponse:
    data = request.POST if request.method == "POST" else None
    form = TemplateForm(data, instance=template)
    items = TemplateItemFormSet(data, instance=template, prefix="items")
    schedules = ScheduleInlineFormSet(data, instance=template, prefix="schedules")
    if data is not None and form.is_valid() and items.is_valid() and schedules.is_valid():
        with transaction.atomic():
            saved = services.template_save(
                actor=request.user,
                template=form.save(commit=False),
                item_forms=items,
                schedule_forms=schedules,
            )
        messages.success(request, f"“{saved.name}” saved. Runs already created keep their own items.")
        return redirect("checklists:template_edit", pk=saved.pk)
    return render(
        request,
        "checklists/template_edit.html",
        {"form": form, "items": items, "schedules": schedules},
    )


@requires("config.edit")
def template_create(request: HttpRequest) -> HttpResponse:
    return _edit(request, ChecklistTemplate())


@requires("config.edit")
def template_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _edit(request, get_object_or_404(ChecklistTemplate, pk=pk))


@requires("read")
def template_history(request: HttpRequest, pk: int) -> HttpResponse:
    template = get_object_or_404(ChecklistTemplate, pk=pk)
    return render(
        request,
        "checklists/history.html",
        {"template": template, **selectors.template_history(template)},
    )


@requires("read")
def template_export(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    template = get_object_or_404(ChecklistTemplate, pk=pk)
    rows = exports.run_rows(selectors.runs_for_export(template))
    return csv_response(exports.RUN_COLUMNS, rows, f"checklist-{template.pk}-runs.csv")


@requires("read")
def template_history_csv(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """The history heatmap's numbers: one row per day."""
    template = get_object_or_404(ChecklistTemplate, pk=pk)
    header, *rows = selectors.template_history(template)["heatmap"].csv_rows()
    return csv_response(header, rows, f"checklist-{template.pk}-days.csv")
