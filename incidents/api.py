"""JSON API: the Alertmanager webhook and a small API for scripts and chat bots.

Every call sends `Authorization: Bearer <API token>` (Settings → API tokens);
the token acts with its owner's role. Errors are 4xx {"error": "..."}.
"""

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.http import require_GET, require_POST

from opsconsole.api import api_token_required, json_error
from opsconsole.badinput import form_from_json, parse_json_body

from . import alerts, selectors, services
from .forms import DeclareApiForm, NoteApiForm
from .models import Incident, TimelineEvent


def _incident_json(incident: Incident) -> dict:
    return {
        "reference": incident.reference,
        "title": incident.title,
        "severity": incident.severity_id,
        "status": incident.status,
        "commander": incident.commander.get_username() if incident.commander else None,
        "declared_at": incident.declared_at.isoformat(),
        "ack_due_at": incident.ack_due_at.isoformat(),
        "resolve_due_at": incident.resolve_due_at.isoformat(),
        "url": services.incident_url(incident),
    }


def _error(exc: Exception):
    if isinstance(exc, PermissionDenied):
        return json_error(str(exc) or "not allowed", 403)
    message = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
    return json_error(message, 400)


@api_token_required("incident.declare")
@require_POST
def alertmanager_webhook(request: HttpRequest) -> JsonResponse:
    """Alertmanager `webhook_configs` receiver (payload version 4)."""
    data, error = parse_json_body(request)
    if error:
        return error
    try:
        notification = alerts.parse(data)
    except alerts.PayloadError as exc:
        return json_error(f"not an Alertmanager v4 webhook payload: {exc}", 422)
    return JsonResponse(alerts.ingest(notification, actor=request.user))


@api_token_required("incident.declare")
@require_POST
def declare(request: HttpRequest) -> JsonResponse:
    """Declare an incident: the declare page's form (DeclareApiForm).

    {"title": str, "severity": 1-4, "summary"?: str, "services"?: [slug], "commander"?: username,
     "restricted"?: bool}
    """
    data, error = parse_json_body(request)
    if error:
        return error
    form, error = form_from_json(DeclareApiForm, data)
    if error:
        return error
    try:
        incident = services.incident_declare(actor=request.user, **form.cleaned_data)
    except (ValidationError, PermissionDenied) as exc:
        return _error(exc)
    return JsonResponse(_incident_json(incident), status=201)


@api_token_required("read")
@require_GET
def incident_detail(request: HttpRequest, reference: str) -> JsonResponse:
    try:
        incident = selectors.get_incident(request.user, reference)
    except Http404:
        return json_error(f"no incident {reference}", 404)
    return JsonResponse(_incident_json(incident))


@api_token_required("incident.note")
@require_POST
def add_note(request: HttpRequest, reference: str) -> JsonResponse:
    """{"text": markdown, "occurred_at"?: ISO-8601 with offset (back-dating)}: the page's note form."""
    data, error = parse_json_body(request)
    if error:
        return error
    try:
        incident = selectors.get_incident(request.user, reference)
    except Http404:
        return json_error(f"no incident {reference}", 404)
    form, error = form_from_json(NoteApiForm, data)
    if error:
        return error
    try:
        event: TimelineEvent = services.incident_add_note(incident=incident, actor=request.user, **form.cleaned_data)
    except (ValidationError, PermissionDenied) as exc:
        return _error(exc)
    return JsonResponse(
        {
            "event_id": event.pk,
            "incident": incident.reference,
            "kind": event.kind,
            "occurred_at": event.occurred_at.isoformat(),
            "recorded_at": event.recorded_at.isoformat(),
        },
        status=201,
    )
