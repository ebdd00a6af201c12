"""What on-call does when incidents announce something (connected in apps.py)."""

from . import escalation


def on_incident_opened(sender, *, incident, **kwargs) -> dict | None:
    """An opened incident starts the escalation policy of its service (level 1
    paged now, by e-mail; the declare's announcement that follows posts to the
    channel, naming who was paged, and leaves those people out)."""
    state = escalation.escalation_start(incident=incident, webhook=False)
    step = getattr(state, "first_step", None)
    if step is None:
        return None
    who = ", ".join(step.recipients) or "nobody"
    note = f"Paging L{step.position} {step.level_name}: {who}."
    return {"paged_emails": step.paged_emails, "note": "" if incident.restricted else note}


def on_incident_acknowledged(sender, *, incident, actor=None, **kwargs) -> None:
    """Acknowledging stops the escalation clock."""
    escalation.escalation_stop(incident=incident, actor=actor)
