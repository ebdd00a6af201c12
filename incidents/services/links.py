"""Links to incidents that work outside the console (messages, exports)."""

from django.conf import settings
from django.urls import reverse

from ..models import Incident


def incident_url(incident: Incident) -> str:
    return settings.CONSOLE_BASE_URL + reverse("incidents:detail", args=[incident.reference])
