"""Incident pages. Views stay thin: access → form → service → render."""

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import reswap, retarget

from opsconsole.badinput import as_pk, int_param
from opsconsole.csv_export import csv_response
from opsconsole.http import HtmxHttpRequest
from opsconsole.live import live_page
from opsconsole.roles import has_capability, requires

from . import exports, panels, selectors, services
from .forms import (
    AlertMappingForm,
    DeclareForm,
    DetailsForm,
    IncidentFilterForm,
    NoteForm,
    ReopenForm,
    RolesForm,
    SeverityChangeForm,
    SeverityLevelForm,
    TransitionForm,
)
from .models import AlertSeverityMapping, EventKind, Incident, SeverityLevel, Status, TimelineEvent
from .reviews import selectors as review_selectors

LIST_PAGE_SIZE = 25


# --- list, declare, exports --------------------------------------------------------


@require_GET
@requires("read")
@live_page("incidents", regions=("incident-rows",))
def incident_list(request: HttpRequest) -> HttpResponse:
    form = IncidentFilterForm(request.GET or None)
    incidents = selectors.incident_list(request.user, form.filters())
    page = Paginator(incidents, LIST_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "incidents/list.html",
        {
            "form": form,
            "ignored_filters": form.ignored(),
            "page": page,
            "query": query.urlencode(),
            "can_declare": has_capability(request.user, "incident.declare"),
        },
    )


@requires("incident.declare")
def declare(request: HttpRequest) -> HttpResponse:
    form = DeclareForm(request.POST or None, initial={"severity": 2})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        incident = services.incident_declare(
            actor=request.user,
            title=data["title"],
            severity=data["severity"],
            summary=data["summary"],
            services=data["services"],
            restricted=data["restricted"],
            commander=request.user if data["i_am_commander"] else None,
        )
        messages.success(request, f"{incident.reference} declared.")
        return redirect("incidents:detail", incident.reference)
    return render(request, "incidents/declare.html", {"form": form})


@require_GET
@requires("read")
def export_incidents(request: HttpRequest) -> StreamingHttpResponse:
    incidents = selectors.incident_list(request.user, IncidentFilterForm(request.GET or None).filters())
    return csv_response(exports.INCIDENT_COLUMNS, exports.incident_rows(incidents), "incidents.csv")


@require_GET
@requires("read")
def export_timeline(request: HttpRequest, reference: str) -> StreamingHttpResponse:
    incident = selectors.get_incident(request.user, reference)
    rows = exports.timeline_rows(incident, selectors.timeline_export(incident))
    return csv_response(exports.TIMELINE_COLUMNS, rows, f"{incident.reference}-timeline.csv")


# --- the incident page ------------------------------------------------------------------


def _kinds(request: HttpRequest) -> list[str]:
    return [k for k in request.GET.getlist("kind") if k in EventKind.values]


def _correcting(incident: Incident, event_id) -> TimelineEvent | None:
    """The event a note being written corrects, quoted above the note form."""
    if (pk := as_pk(event_id)) is None:
        return None
    return TimelineEvent.objects.filter(incident=incident, pk=pk).select_related("author").first()


def _page_context(request: HttpRequest, incident: Incident, **extra) -> dict:
    kinds = _kinds(request)
    events, older = selectors.timeline_page(incident, kinds=kinds)
    can_manage = services.can_manage(request.user, incident)
    correct_id = request.GET.get("correct", "")
    return {
        "incident": incident,
        "events": events,
        "older": older,
        "cursor": selectors.latest_event_id(incident),
        "kinds": kinds,
        "kind_choices": EventKind.choices,
        "kind_query": urlencode([("kind", k) for k in kinds]),
        "can_manage": can_manage,
        "can_note": has_capability(request.user, "incident.note"),
        "next_statuses": sorted(services.TRANSITIONS.get(incident.status, ()), key=list(Status.values).index),
        "firing": selectors.firing_signals(incident),
        "note_form": NoteForm(initial={"corrects": correct_id} if as_pk(correct_id) is not None else None),
        "correcting": _correcting(incident, correct_id),
        "severity_form": SeverityChangeForm(initial={"severity": incident.severity_id}) if can_manage else None,
        "review_ctx": review_selectors.incident_review_context(incident, request.user),
        "can_write_review": has_capability(request.user, "review.write"),
        **extra,
    }


@require_GET
@requires("read")
@live_page("incidents", "oncall", "runbooks", regions=("incident-header", "incident-aside"))
def detail(request: HttpRequest, reference: str) -> HttpResponse:
    incident = selectors.get_incident(request.user, reference)
    extra_panels = panels.render_panels(request, incident)  # registered by higher apps (runbooks)
    return render(request, "incidents/detail.html", _page_context(request, incident, extra_panels=extra_panels))


@require_GET
@requires("read")
def timeline_older(request: HtmxHttpRequest, reference: str) -> HttpResponse:
    """The next older page of events (the "Load older" button)."""
    incident = selectors.get_incident(request.user, reference)
    kinds = _kinds(request)
    events, older = selectors.timeline_page(incident, kinds=kinds, before=request.GET.get("before", ""))
    context = {
        "incident": incident,
        "events": events,
        "older": older,
        "kind_query": urlencode([("kind", k) for k in kinds]),
        "can_note": has_capability(request.user, "incident.note"),
    }
    if request.htmx:
        return render(request, "incidents/detail.html#older-page", context)
    return render(request, "incidents/timeline_page.html", context)


@require_GET
@requires("read")
def timeline_since(request: HttpRequest, reference: str) -> HttpResponse:
    """Events added since the page's cursor (htmx polls this every few seconds).
    204 when nothing is new, so that the page is left alone."""
    incident = selectors.get_incident(request.user, reference)
    try:
        after = int(request.GET.get("after", "0"))
    except ValueError:
        after = 0
    events = selectors.timeline_since(incident, after=after, kinds=_kinds(request))
    if not events:
        return HttpResponse(status=204)
    return _since_response(request, incident, events, after)


def _since_response(request, incident, events, after, **extra) -> HttpResponse:
    cursor = max([after] + [e.pk for e in events])
    return render(
        request,
        "incidents/detail.html#since",
        {
            "incident": incident,
            "events": events,
            "cursor": cursor,
            "can_note": has_capability(request.user, "incident.note"),
            **extra,
        },
    )


@require_POST
@requires("incident.note")
def add_note(request: HtmxHttpRequest, reference: str) -> HttpResponse:
    incident = selectors.get_incident(request.user, reference)
    # Validate first, write after: a bad cursor used to fail after the note was saved (a retry duplicated it).
    after = int_param(request.POST, "after")
    form = NoteForm(request.POST)
    if form.is_valid():
        corrects = None
        if form.cleaned_data["corrects"]:
            corrects = TimelineEvent.objects.filter(incident=incident, pk=form.cleaned_data["corrects"]).first()
        try:
            services.incident_add_note(
                incident=incident,
                actor=request.user,
                text=form.cleaned_data["text"],
                occurred_at=form.cleaned_data["occurred_at"],
                corrects=corrects,
            )
        except ValidationError as exc:
            form.add_error(None, exc)
    if not form.is_valid():
        if request.htmx:
            response = render(
                request,
                "incidents/detail.html#note-form",
                {
                    "incident": incident,
                    "note_form": form,
                    "correcting": _correcting(incident, form.data.get("corrects")),
                },
            )
            return reswap(retarget(response, "#note-form"), "outerHTML")
        messages.error(
            request,
            "The note was not added: " + " ".join(m for e in form.errors.values() for m in e),
        )
        return redirect("incidents:detail", reference)
    if not request.htmx:
        return redirect("incidents:detail", reference)
    events = selectors.timeline_since(incident, after=after, kinds=_kinds(request))
    return _since_response(request, incident, events, after, note_form=NoteForm(), reset_form=True)


@require_POST
@requires("incident.note")
def star_event(request: HtmxHttpRequest, reference: str, event_id: int) -> HttpResponse:
    incident = selectors.get_incident(request.user, reference)
    event = get_object_or_404(TimelineEvent, incident=incident, pk=event_id)
    services.event_set_star(event=event, actor=request.user, starred=request.POST.get("starred") == "1")
    if request.htmx:
        event = selectors.timeline_event(incident, event.pk)
        return render(
            request,
            "incidents/detail.html#event",
            {"incident": incident, "event": event, "can_note": True},
        )
    return redirect(reverse("incidents:detail", args=[reference]) + f"#event-{event.pk}")


# --- status, SEV, roles, details (commanders; SREs when assigned) ------------------------


def _back(reference: str) -> HttpResponse:
    return redirect("incidents:detail", reference)


@require_POST
@requires("incident.manage_assigned")
def transition(request: HttpRequest, reference: str) -> HttpResponse:
    incident = selectors.get_incident(request.user, reference)
    form = TransitionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a valid status.")
        return _back(reference)
    try:
        services.incident_transition(
            incident=incident,
            actor=request.user,
            to=form.cleaned_data["to"],
            note=form.cleaned_data["note"],
            confirm_firing=form.cleaned_data["confirm_firing"],
        )
    except services.ConfirmationRequired as exc:
        return render(
            request,
            "incidents/resolve_confirm.html",
            {"incident": incident, "firing": exc.firing, "note": form.cleaned_data["note"]},
        )
    except services.TransitionRefused as exc:
        messages.error(request, str(exc))
        return _back(reference)
    messages.success(request, f"{incident.reference} is now {form.cleaned_data['to']}.")
    return _back(reference)


@require_POST
@requires("incident.manage_assigned")
def reopen(request: HttpRequest, reference: str) -> HttpResponse:
    incident = selectors.get_incident(request.user, reference)
    form = ReopenForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say why the incident is reopened.")
        return _back(reference)
    try:
        services.incident_reopen(incident=incident, actor=request.user, reason=form.cleaned_data["reason"])
        messages.success(request, f"{incident.reference} reopened.")
    except services.TransitionRefused as exc:
        messages.error(request, str(exc))
    return _back(reference)


@require_POST
@requires("incident.manage_assigned")
def change_severity(request: HttpRequest, reference: str) -> HttpResponse:
    incident = selectors.get_incident(request.user, reference)
    form = SeverityChangeForm(request.POST)
    if form.is_valid():
        services.incident_set_severity(
            incident=incident,
            actor=request.user,
            severity=form.cleaned_data["severity"].level,
            reason=form.cleaned_data["reason"],
        )
        messages.success(request, f"{incident.reference} is now {form.cleaned_data['severity'].name}.")
    else:
        messages.error(request, "Choose a SEV level.")
    return _back(reference)


@requires("incident.manage_assigned")
def edit_roles(request: HttpRequest, reference: str) -> HttpResponse:
    incident = selectors.get_incident(request.user, reference)
    services.check_can_manage(request.user, incident)
    initial = {
        "commander": incident.commander,
        "comms_lead": incident.comms_lead,
        "responders": list(incident.responders.all()),
    }
    form = RolesForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        services.incident_set_roles(incident=incident, actor=request.user, **form.cleaned_data)
        messages.success(request, "Roles saved.")
        return _back(reference)
    return render(request, "incidents/edit.html", {"incident": incident, "form": form, "heading": "Roles"})


@requires("incident.manage_assigned")
def edit_details(request: HttpRequest, reference: str) -> HttpResponse:
    incident = selectors.get_incident(request.user, reference)
    services.check_can_manage(request.user, incident)
    initial = {
        "title": incident.title,
        "summary": incident.summary,
        "customer_impact": incident.customer_impact,
        "services": list(incident.services.all()),
        "tags": incident.tags,
        "restricted": incident.restricted,
    }
    form = DetailsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        services.incident_update_details(incident=incident, actor=request.user, **form.cleaned_data)
        messages.success(request, "Details saved.")
        return _back(reference)
    return render(request, "incidents/edit.html", {"incident": incident, "form": form, "heading": "Details"})


# --- SEV table and alert mappings (Managers edit) ------------------------------------------


@require_GET
@requires("read")
def severity_levels(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "incidents/severity_levels.html",
        {
            "levels": selectors.severity_levels(),
            "mappings": AlertSeverityMapping.objects.select_related("severity"),
            "mapping_form": AlertMappingForm(),
            "can_edit": has_capability(request.user, "schedule.edit"),
        },
    )


@requires("schedule.edit")
def severity_level_edit(request: HttpRequest, level: int) -> HttpResponse:
    obj = get_object_or_404(SeverityLevel, pk=level)
    form = SeverityLevelForm(request.POST or None, instance=SeverityLevel.objects.get(pk=level))
    if request.method == "POST" and form.is_valid():
        services.severity_level_update(actor=request.user, level=obj, **form.cleaned_data)
        messages.success(request, f"{obj.name} saved.")
        return redirect("incidents:severity_levels")
    return render(request, "incidents/severity_level_edit.html", {"level": obj, "form": form})


def _mapping_message(mapping: AlertSeverityMapping) -> str:
    said = f"Alerts with severity “{mapping.label_value}” open SEV-{mapping.severity_id}"
    if mapping.previous_severity is None:
        return f"{said} (a new mapping)."
    if mapping.previous_severity == mapping.severity_id:
        return f"{said}: unchanged, that was already the mapping."
    return f"{said}. This replaced the previous mapping to SEV-{mapping.previous_severity}."


@require_POST
@requires("schedule.edit")
def alert_mapping_set(request: HttpRequest) -> HttpResponse:
    form = AlertMappingForm(request.POST)
    if form.is_valid():
        mapping = services.alert_mapping_set(
            actor=request.user,
            label_value=form.cleaned_data["label_value"],
            severity=form.cleaned_data["severity"].level,
        )
        messages.success(request, _mapping_message(mapping))
    else:
        messages.error(request, "Give a label value and a SEV.")
    return redirect("incidents:severity_levels")


@require_POST
@requires("schedule.edit")
def alert_mapping_delete(request: HttpRequest, pk: int) -> HttpResponse:
    mapping = get_object_or_404(AlertSeverityMapping, pk=pk)
    services.alert_mapping_delete(actor=request.user, mapping=mapping)
    messages.success(request, f"Mapping “{mapping.label_value}” removed.")
    return redirect("incidents:severity_levels")
