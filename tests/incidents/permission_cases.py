"""Permission-matrix cases for every incidents URL that changes state."""

from incidents import services
from incidents.models import AlertSeverityMapping, Incident
from tests.permissions import Case


def _assigned(user):
    """An incident the requesting user commands: SREs may then manage it."""
    incident = services.incident_declare(actor=None, title="Queue backlog", severity=2, commander=user)
    return {"reference": incident.reference}


def _resolved(user):
    incident = services.incident_declare(actor=None, title="Cert expiry", severity=3, commander=user)
    Incident.objects.filter(pk=incident.pk).update(status="resolved")
    return {"reference": incident.reference}


def _event(user):
    incident = services.incident_declare(actor=None, title="DB connections", severity=2)
    return {"reference": incident.reference, "event_id": incident.events.get().pk}


def _mapping(user):
    services.ensure_defaults()
    return {"pk": AlertSeverityMapping.objects.get(label_value="critical").pk}


def _level(user):
    services.ensure_defaults()
    return {"level": 3}


CASES = [
    Case(
        "incidents:declare",
        "incident.declare",
        data=lambda kw: {"title": "Checkout down", "severity": 1},
    ),
    Case(
        "incidents:note",
        "incident.note",
        setup=_assigned,
        data=lambda kw: {"text": "Looking at the pool"},
    ),
    Case("incidents:star", "incident.note", setup=_event, data=lambda kw: {"starred": "1"}),
    Case(
        "incidents:transition",
        "incident.manage_assigned",
        setup=_assigned,
        data=lambda kw: {"to": "acknowledged"},
    ),
    Case(
        "incidents:reopen",
        "incident.manage_assigned",
        setup=_resolved,
        data=lambda kw: {"reason": "back"},
    ),
    Case(
        "incidents:severity",
        "incident.manage_assigned",
        setup=_assigned,
        data=lambda kw: {"severity": 1},
    ),
    Case("incidents:roles", "incident.manage_assigned", setup=_assigned, data=lambda kw: {}),
    Case(
        "incidents:edit",
        "incident.manage_assigned",
        setup=_assigned,
        data=lambda kw: {
            "title": "Queue backlog > 5000",
            "summary": "",
            "customer_impact": "delays",
        },
    ),
    Case(
        "incidents:severity_level_edit",
        "schedule.edit",
        setup=_level,
        data=lambda kw: {
            "definition": "Partial degradation",
            "examples": "Slow",
            "ack_target_minutes": 60,
            "resolve_target_minutes": 600,
        },
    ),
    Case(
        "incidents:alert_mapping_set",
        "schedule.edit",
        data=lambda kw: {"label_value": "sev1", "severity": 1},
    ),
    Case("incidents:alert_mapping_delete", "schedule.edit", setup=_mapping),
]


def _note_target(user):
    incident = services.incident_declare(actor=None, title="API note target", severity=3)
    return {"reference": incident.reference}


def alertmanager_payload(
    group_key: str = '{}:{alertname="JobQueueBacklog"}',
    status: str = "firing",
    alerts: list | None = None,
) -> dict:
    """A version 4 webhook body as Alertmanager sends it."""
    alerts = alerts or [
        {
            "status": status,
            "labels": {
                "alertname": "JobQueueBacklog",
                "severity": "medium",
                "service": "message-queue",
            },
            "annotations": {"summary": "Job queue size > 1000"},
            "startsAt": "2026-11-23T10:00:00Z",
            "endsAt": "2026-11-23T10:30:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus/graph",
            "fingerprint": "a1b2c3d4e5f60718",
        }
    ]
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "console",
        "groupLabels": {"alertname": "JobQueueBacklog"},
        "commonLabels": alerts[0]["labels"],
        "commonAnnotations": alerts[0]["annotations"],
        "externalURL": "http://alertmanager:9093",
        "alerts": alerts,
    }


JSON = {"content_type": "application/json"}

CASES += [
    Case(
        "incidents_api:alertmanager",
        "incident.declare",
        data=lambda kw: alertmanager_payload(),
        headers=JSON,
    ),
    Case(
        "incidents_api:declare",
        "incident.declare",
        data=lambda kw: {"title": "From a bot", "severity": 2},
        headers=JSON,
    ),
    Case(
        "incidents_api:note",
        "incident.note",
        setup=_note_target,
        data=lambda kw: {"text": "bot note"},
        headers=JSON,
    ),
]

from .review_permission_cases import CASES as REVIEW_CASES  # noqa: E402

CASES += REVIEW_CASES
