from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from opsconsole.csv_export import csv_response
from opsconsole.http import HtmxHttpRequest
from opsconsole.live import live_page
from opsconsole.roles import has_capability, requires

from . import heartbeats, hooks, selectors, services
from .charts import latency_chart, latency_csv_rows
from .forms import CheckForm, MaintenanceWindowForm
from .models import Check, MaintenanceWindow


@requires("read")
@live_page("healthchecks", regions=("board",))
def board(request: HtmxHttpRequest) -> HttpResponse:
    filters = selectors.BoardFilters(**{k: request.GET.get(k, "").strip() for k in ("service", "state", "kind", "q")})
    maintenance_checks, maintenance_services = selectors.maintenance_targets()
    page, groups = selectors.board_page(filters, request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "groups": groups,
        "page": page,
        "query": query.urlencode(),
        "kind_labels": dict(Check.Kind.choices),
        "filters": filters,
        "counts": selectors.state_counts(),
        "services": selectors.services_for_filter(),
        "states": Check.State.choices,
        "kinds": Check.Kind.choices,
        "maintenance_checks": maintenance_checks,
        "maintenance_services": maintenance_services,
        "can_edit": has_capability(request.user, "config.edit"),
        "row_actions": hooks.board_row_actions(request.user),
    }
    template = "healthchecks/board.html#board" if request.htmx else "healthchecks/board.html"
    return render(request, template, context)


@requires("read")
@live_page("check:{pk}", "healthchecks", regions=("check-page",))
def check_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "healthchecks/check_detail.html", _detail_context(request, _get_check(pk)))


def _detail_context(request: HttpRequest, check: Check, result=None) -> dict:
    can_edit = has_capability(request.user, "config.edit")
    return {
        "result": result,
        "check": check,
        "results": selectors.recent_results(check),
        "history": selectors.state_history(check),
        "latency_chart": latency_chart(check, selectors.latency_series(check)),
        "windows": selectors.maintenance_for_check(check),
        "can_edit": can_edit,
        # The token is the ping URL's only credential: config.edit only.
        "ping_url": _ping_url(request, check) if can_edit else None,
        # Sections added by higher apps (runbooks: start a runbook, auto-remediation).
        "extra_panels": hooks.render_check_panels(request, check),
    }


@requires("config.edit")
def check_create(request: HttpRequest) -> HttpResponse:
    form = CheckForm(request.POST or None, initial={"service": request.GET.get("service")})
    if request.method == "POST" and form.is_valid():
        check = services.check_create(
            actor=request.user,
            config=form.cleaned_data["config"],
            **{f: form.cleaned_data[f] for f in CheckForm.Meta.fields},
        )
        messages.success(request, f"Check “{check.name}” created; it runs within seconds.")
        return redirect("healthchecks:detail", pk=check.pk)
    return render(request, "healthchecks/check_form.html", {"form": form, "check": None})


@requires("config.edit")
def check_edit(request: HttpRequest, pk: int) -> HttpResponse:
    check = _get_check(pk)
    form = CheckForm(request.POST or None, instance=check)
    if request.method == "POST" and form.is_valid():
        fields = {f: form.cleaned_data[f] for f in CheckForm.Meta.fields}
        services.check_update(
            actor=request.user,
            check=Check.objects.get(pk=pk),
            config=form.cleaned_data["config"],
            **fields,
        )
        messages.success(request, "Check saved.")
        return redirect("healthchecks:detail", pk=pk)
    return render(request, "healthchecks/check_form.html", {"form": form, "check": check})


@require_POST
@requires("config.edit")
def check_run_now(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    check = _get_check(pk)
    result = services.run_check_now(actor=request.user, check=check)
    if not request.htmx:
        messages.info(request, f"Run now: {result.state} — {result.message}")
        return redirect("healthchecks:detail", pk=pk)
    # The whole page follows the run (state, last result, chart, log), not only a line.
    context = _detail_context(request, _get_check(pk), result)
    return render(request, "healthchecks/check_detail.html#check-page", context)


@require_POST
@requires("config.edit")
def heartbeat_rotate(request: HttpRequest, pk: int) -> HttpResponse:
    check = heartbeats.heartbeat_rotate_token(actor=request.user, check=_get_check(pk))
    messages.success(request, f"“{check.name}” has a new ping URL: the old one no longer works.")
    return redirect("healthchecks:detail", pk=pk)


@requires("read")
def maintenance_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "healthchecks/maintenance.html",
        {
            "windows": selectors.maintenance_windows(),
            "can_edit": has_capability(request.user, "config.edit"),
        },
    )


@requires("config.edit")
def maintenance_create(request: HttpRequest) -> HttpResponse:
    form = MaintenanceWindowForm(
        request.POST or None,
        initial={"check_ref": request.GET.get("check"), "service": request.GET.get("service")},
    )
    if request.method == "POST" and form.is_valid():
        services.maintenance_window_create(
            actor=request.user,
            service=form.cleaned_data["service"],
            check=form.cleaned_data["check_ref"],
            starts_at=form.cleaned_data["starts_at"],
            ends_at=form.cleaned_data["ends_at"],
            reason=form.cleaned_data["reason"],
        )
        messages.success(request, "Maintenance window saved: state changes in it open no incident.")
        return redirect("healthchecks:maintenance")
    return render(request, "healthchecks/maintenance_form.html", {"form": form})


@require_POST
@requires("config.edit")
def maintenance_end(request: HttpRequest, pk: int) -> HttpResponse:
    window = get_object_or_404(MaintenanceWindow, pk=pk)
    services.maintenance_window_end(actor=request.user, window=window)
    messages.success(request, "Maintenance window ended.")
    return redirect("healthchecks:maintenance")


@csrf_exempt  # called by cron jobs and scripts: the unguessable token is the credential
@require_http_methods(["GET", "POST", "HEAD"])
def ping(request: HttpRequest, token: uuid.UUID, failed: bool = False) -> HttpResponse:
    if heartbeats.heartbeat_ping(token=token, failed=failed) is None:
        return HttpResponse("unknown heartbeat\n", status=404, content_type="text/plain")
    return HttpResponse("fail noted\n" if failed else "ok\n", content_type="text/plain")


def _ping_url(request: HttpRequest, check: Check) -> str:
    return request.build_absolute_uri(reverse("healthchecks:ping", args=[check.heartbeat_token]))


def _get_check(pk: int) -> Check:
    try:
        return selectors.check_for_page(pk)
    except Check.DoesNotExist as exc:
        raise Http404("No such check.") from exc


@requires("read")
def latency_csv(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """The latency chart's numbers (the same points as the drawing)."""
    check = _get_check(pk)
    rows = latency_csv_rows(check, selectors.latency_series(check))
    return csv_response(["time", "check", "latency (ms)"], rows, f"check-{check.pk}-latency.csv")
