"""Reads of runbooks: querysets with what their pages need, in a constant number of queries."""

import re

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db import connection
from django.db.models import Count, Exists, F, OuterRef, Prefetch, Q, QuerySet

from .models import ActionRun, Execution, RemediationBinding, Runbook, RunbookStep, RunbookVersion, StepRun


def runbook_list(query: str = "", *, service_id: int | None = None, tag: str = "") -> QuerySet[Runbook]:
    """Runbooks matching a full-text query (PostgreSQL: websearch syntax over the
    title, symptoms and steps, best match first; SQLite: substring match)."""
    runbooks = Runbook.objects.filter(current_version__isnull=False).select_related("current_version")
    runbooks = runbooks.prefetch_related("services").annotate(step_count=Count("current_version__steps"))
    if service_id:
        runbooks = runbooks.filter(services__id=service_id)
    if tag:
        runbooks = (
            runbooks.filter(tags__contains=[tag])
            if connection.vendor == "postgresql"
            else runbooks.filter(tags__icontains=f'"{tag}"')
        )
    query = query.strip()[:200]
    if not query:
        return runbooks.order_by("title")
    if connection.vendor == "postgresql":
        search = SearchQuery(query, search_type="websearch", config="english")
        return (
            runbooks.filter(search_vector=search)
            .annotate(rank=SearchRank(F("search_vector"), search))
            .order_by("-rank", "title")
        )
    return runbooks.filter(
        Q(title__icontains=query) | Q(symptoms__icontains=query) | Q(search_text__icontains=query)
    ).order_by("title")


def runbook_detail(pk: int) -> Runbook:
    return Runbook.objects.select_related("current_version__created_by").prefetch_related("services").get(pk=pk)


def version_steps(version: RunbookVersion) -> list[RunbookStep]:
    return list(version.steps.order_by("order"))


def runbook_history(runbook: Runbook) -> list[RunbookVersion]:
    return list(runbook.versions.select_related("created_by").annotate(step_count=Count("steps")).order_by("-number"))


def recent_executions(runbook: Runbook, limit: int = 10) -> list[Execution]:
    return list(runbook.executions.select_related("version", "started_by", "incident").order_by("-started_at")[:limit])


def suggestions_for_incident(incident, limit: int = 5) -> list[Runbook]:
    """Runbooks of the incident's services first, then those whose text matches
    its title (alert names included): one query. The incident's services are
    already prefetched."""
    service_ids = [s.pk for s in incident.services.all()]
    for_service = Exists(Runbook.services.through.objects.filter(runbook_id=OuterRef("pk"), service_id__in=service_ids))
    condition = Q(for_service=True)
    words = [w for w in re.findall(r"[^\W_]+", incident.title) if len(w) > 3][:8]
    if words:
        if connection.vendor == "postgresql":
            condition |= Q(search_vector=SearchQuery(" or ".join(words), search_type="websearch", config="english"))
        else:
            condition |= Q(title__icontains=words[0])
    return list(
        Runbook.objects.filter(current_version__isnull=False)
        .annotate(for_service=for_service)
        .filter(condition)
        .order_by("-for_service", "title")[:limit]
    )


def execution_page(pk: int) -> Execution:
    return Execution.objects.select_related(
        "runbook", "version", "incident", "check_ref", "started_by", "status_changed_by"
    ).get(pk=pk)


def execution_steps(execution: Execution) -> list[StepRun]:
    """Every step with its pinned instructions and its action requests: three queries whatever the count."""
    actions = ActionRun.objects.select_related("requested_by", "approved_by", "verify_check").order_by(
        "requested_at", "id"
    )
    return list(
        StepRun.objects.filter(execution=execution)
        .select_related("step", "by")
        .prefetch_related(Prefetch("action_runs", queryset=actions))
        .order_by("order")
    )


def execution_progress(execution: Execution) -> dict:
    return StepRun.objects.filter(execution=execution).aggregate(
        total=Count("id"), done=Count("id", filter=~Q(state=StepRun.State.PENDING))
    )


def executions_for_incident(incident) -> list[Execution]:
    return list(incident.runbook_executions.select_related("runbook", "version", "started_by").order_by("-started_at"))


def pending_approvals(limit: int = 20) -> list[ActionRun]:
    return list(
        ActionRun.objects.filter(status=ActionRun.Status.AWAITING_APPROVAL)
        .select_related("requested_by", "step_run__execution__runbook")
        .order_by("requested_at")[:limit]
    )


def suggestions_for_check(check, limit: int = 5) -> list[Runbook]:
    """Runbooks of the check's service first, then those whose text matches its name: one query."""
    for_service = Exists(
        Runbook.services.through.objects.filter(runbook_id=OuterRef("pk"), service_id=check.service_id)
    )
    condition = Q(for_service=True)
    words = [w for w in re.findall(r"[^\W_]+", check.name) if len(w) > 3][:8]
    if words and connection.vendor == "postgresql":
        condition |= Q(search_vector=SearchQuery(" or ".join(words), search_type="websearch", config="english"))
    return list(
        Runbook.objects.filter(current_version__isnull=False)
        .annotate(for_service=for_service)
        .filter(condition)
        .order_by("-for_service", "title")[:limit]
    )


def binding_for_check(check) -> RemediationBinding | None:
    return RemediationBinding.objects.select_related("approved_by", "updated_by").filter(check_ref=check).first()


def remediation_runs(check, limit: int = 10) -> list[ActionRun]:
    """The check's automatic runs (and actions verified against it), newest first."""
    return list(
        ActionRun.objects.filter(check_ref=check)
        .select_related("incident", "approved_by")
        .order_by("-requested_at", "-id")[:limit]
    )


def checks_for_verification(execution: Execution, limit: int = 100) -> list:
    """Checks a person may pick to verify a fix: the execution's own check and
    those of the runbook's and the incident's services (one query)."""
    from healthchecks.models import Check

    condition = Q(service__runbooks=execution.runbook_id)
    if execution.check_ref_id:
        condition |= Q(pk=execution.check_ref_id)
    if execution.incident_id:
        condition |= Q(service__incidents=execution.incident_id)
    checks = Check.objects.filter(condition).select_related("service").distinct()
    return list(checks.order_by("service__name", "name")[:limit])


_RUNBOOK_PATH = re.compile(r"^/runbooks/(?P<pk>\d+)/?$")


def runbook_for_link(url: str, label: str = "") -> tuple[int | None, str]:
    """A checklist item's link, as (runbook id, external URL): a link to one of
    this console's runbook pages (relative, or on a host it answers to) or a
    label naming a runbook is a reference; any other http(s) link stays a URL."""
    from urllib.parse import urlsplit

    from django.conf import settings

    url, label = (url or "").strip(), (label or "").strip()
    parts = urlsplit(url)
    hosts = {(urlsplit(settings.CONSOLE_BASE_URL).hostname or "").lower()} | {
        h.lower().lstrip(".") for h in settings.ALLOWED_HOSTS if h and h != "*"
    }
    match = _RUNBOOK_PATH.match(parts.path)
    own = not parts.netloc or (parts.scheme in ("http", "https") and (parts.hostname or "").lower() in hosts)
    if match and own:
        pk = Runbook.objects.filter(pk=int(match["pk"])).values_list("pk", flat=True).first()
        if pk:
            return pk, ""
    if label:
        pk = Runbook.objects.filter(title__iexact=label).values_list("pk", flat=True).first()
        if pk:
            return pk, ""
    return None, url if parts.scheme in ("http", "https") and parts.netloc else ""
