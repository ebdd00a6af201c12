"""Writes for incidents. Each service owns its transaction and audit entry.

Split by concern; every name stays importable from `incidents.services`:

- rendering    Markdown → sanitised HTML
- severity     the SEV table, the alert label → SEV mapping, their seeding
- permissions  who may manage an incident
- links        absolute incident URLs
- common       references (INC-…), audit snapshots, service lookup
- announce     webhook/email announcements through the notifications app
- timeline     the append-only timeline: events, notes, stars
- lifecycle    declare, transition, reopen
- editing      SEV, roles and details of an incident
- ingestion    alerts and checks opening/updating incidents
- nudges       reminders for quiet or commander-less incidents

Public contract used by other areas (keep the names):
- timeline_add_event() (and timeline_add_events() for sweeps, in bulk): the
  one way anything writes an incident timeline;
- open_or_update_from_source(): alerts and check state changes open or
  update the incident of their dedup key.
"""

from .announce import _announce, _participant_emails
from .common import INCIDENT_FIELDS, _duration, _next_reference, _resolve_services, _snapshot, next_reference
from .editing import incident_set_roles, incident_set_severity, incident_update_details
from .ingestion import _update_signals, open_or_update_from_source
from .lifecycle import (
    PHASE_FIELDS,
    TRANSITIONS,
    ConfirmationRequired,
    TransitionRefused,
    incident_declare,
    incident_reopen,
    incident_transition,
    open_statuses,
)
from .links import incident_url
from .nudges import send_nudges
from .permissions import can_manage, check_can_manage
from .rendering import render_markdown
from .severity import (
    DEFAULT_ALERT_MAPPINGS,
    DEFAULT_SEVERITY_LEVELS,
    alert_mapping_delete,
    alert_mapping_set,
    alert_severity,
    alert_severity_highest,
    ensure_defaults,
    severity_level,
    severity_level_update,
)
from .timeline import event_set_star, incident_add_note, timeline_add_event, timeline_add_events

__all__ = [
    "DEFAULT_ALERT_MAPPINGS",
    "DEFAULT_SEVERITY_LEVELS",
    "INCIDENT_FIELDS",
    "PHASE_FIELDS",
    "TRANSITIONS",
    "ConfirmationRequired",
    "TransitionRefused",
    "_announce",
    "_duration",
    "_next_reference",
    "_participant_emails",
    "_resolve_services",
    "_snapshot",
    "_update_signals",
    "alert_mapping_delete",
    "alert_mapping_set",
    "alert_severity",
    "alert_severity_highest",
    "can_manage",
    "check_can_manage",
    "ensure_defaults",
    "event_set_star",
    "incident_add_note",
    "incident_declare",
    "incident_reopen",
    "incident_set_roles",
    "incident_set_severity",
    "incident_transition",
    "incident_update_details",
    "incident_url",
    "next_reference",
    "open_or_update_from_source",
    "open_statuses",
    "render_markdown",
    "send_nudges",
    "severity_level",
    "severity_level_update",
    "timeline_add_event",
    "timeline_add_events",
]
