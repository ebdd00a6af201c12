"""What on-call does when incidents announce something (connected in apps.py)."""

from . import escalation


def on_incident_opened(sender, *, incident, **kwargs) -> None:
    """An opened incident starts the escalation policy of its service (level 1 paged now)."""
    escalation.escalation_start(incident=incident)


def on_incident_acknowledged(sender, *, incident, actor=None, **kwargs) -> None:
    """Acknowledging stops the escalation clock."""
    escalation.escalation_stop(incident=incident, actor=actor)
