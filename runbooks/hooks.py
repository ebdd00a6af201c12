"""How runbooks reach the pages of apps below it, through the hooks they expose:
the dashboard's panel column and the incident page's side panels."""

from django.http import HttpRequest

from opsconsole.roles import has_capability

from . import selectors
from .forms import StartForm
from .models import ActionRun, Execution


def _visible(request: HttpRequest, queryset, field: str):
    """Rows linked to a restricted incident the viewer may not see are left out."""
    from django.db.models import Q

    from incidents.selectors import visible_incidents

    return queryset.filter(Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__in": visible_incidents(request.user)}))


def _auto_runs_last_day(request: HttpRequest) -> dict:
    """Automatic remediation runs of the last 24 h: the five newest and, in the
    same query (window aggregates, computed before the LIMIT), how many in all
    and how many failed."""
    import datetime

    from django.db.models import Count, Q, Window
    from django.utils import timezone

    since = timezone.now() - datetime.timedelta(hours=24)
    runs = _visible(request, ActionRun.objects.filter(trigger__isnull=False, requested_at__gte=since), "incident")
    latest = list(
        runs.select_related("check_ref")
        .annotate(
            total=Window(Count("id")),
            failed=Window(Count("id", filter=Q(status__in=[ActionRun.Status.FAILED, ActionRun.Status.INTERRUPTED]))),
        )
        .order_by("-requested_at", "-id")[:5]
    )
    return {
        "latest": latest,
        "total": latest[0].total if latest else 0,
        "failed": latest[0].failed if latest else 0,
    }


def dashboard_panel_context(request: HttpRequest) -> dict:
    approvals = _visible(request, ActionRun.objects.filter(status=ActionRun.Status.AWAITING_APPROVAL), "incident")
    active = _visible(request, Execution.objects.filter(status__in=["running", "paused"]), "incident")
    return {
        "approvals": list(
            approvals.select_related("requested_by", "step_run__execution__runbook").order_by("requested_at")[:10]
        ),
        "active": list(active.select_related("runbook").order_by("-started_at")[:10]),
        "auto": _auto_runs_last_day(request),
    }


def incident_panel_context(request: HttpRequest, incident) -> dict:
    return {
        "suggested": selectors.suggestions_for_incident(incident),
        "executions": selectors.executions_for_incident(incident),
        "can_run": has_capability(request.user, "runbook.run"),
        "start_form": StartForm(initial={"incident": incident.reference}),
        "incident": incident,
    }


def register_incident_panel() -> None:
    from incidents import panels

    panels.register_panel(
        name="runbooks", template="runbooks/_incident_panel.html", context=incident_panel_context, order=20
    )


def check_panel_context(request: HttpRequest, check) -> dict:
    """The check page's runbooks section: start a runbook pre-linked to the
    check (and its open incident, when the viewer may see it), and the check's
    auto-remediation with its recent runs. Four queries."""
    from incidents.selectors import visible_incidents

    incident = visible_incidents(request.user).open().filter(dedup_key=f"check:{check.pk}").first()
    return {
        "check": check,
        "incident": incident,
        "suggested": selectors.suggestions_for_check(check),
        "binding": selectors.binding_for_check(check),
        "runs": selectors.remediation_runs(check),
        "can_run": has_capability(request.user, "runbook.run"),
        "can_edit": has_capability(request.user, "config.edit"),
        "failing": check.state in ("critical", "warning"),
    }


def register_check_hooks() -> None:
    from healthchecks import hooks as check_hooks

    from . import remediation

    check_hooks.register_state_change_listener("runbooks.auto_remediation", remediation.on_state_change)
    check_hooks.register_check_panel(
        name="runbooks", template="runbooks/_check_panel.html", context=check_panel_context, order=20
    )
    check_hooks.register_board_row_action(
        name="runbooks", label="Start runbook", capability="runbook.run", href_template=_start_runbook_href
    )


def _start_runbook_href() -> str:
    """The failing check's page, at its runbooks section: the runbooks suggested
    for the check with their start buttons (the execution is linked to the check
    and its open incident), which the board could not offer without a query per row."""
    from django.urls import reverse

    return reverse("healthchecks:detail", args=[0]).removesuffix("0/") + "{check_id}/#check-runbooks"
