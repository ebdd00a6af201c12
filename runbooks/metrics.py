"""Runbook figures for /metrics, read from the database at scrape time."""

from collections.abc import Iterable

from django.db.models import Case, CharField, Count, Value, When
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

# Outcomes of an automatic remediation trigger (runbooks.remediation.auto_remediate).
AUTO_OUTCOMES = ("ran", "skipped-cooldown", "skipped-limit", "refused")


class RunbookCollector:
    """opsconsole_runbook_action_runs{action,status}, opsconsole_runbook_executions{status}
    and opsconsole_runbook_auto_remediations_total{outcome}. Three queries."""

    def collect(self) -> Iterable[Metric]:
        from .models import ActionRun, Execution

        actions = GaugeMetricFamily(
            "opsconsole_runbook_action_runs",
            "Remediation action runs, by action and status.",
            labels=["action", "status"],
        )
        for action, status, n in ActionRun.objects.values_list("action", "status").annotate(n=Count("id")).order_by():
            actions.add_metric([action, status], n)
        yield actions
        executions = GaugeMetricFamily(
            "opsconsole_runbook_executions", "Runbook executions, by status.", labels=["status"]
        )
        counts = dict(Execution.objects.values_list("status").annotate(n=Count("id")).order_by())
        for status in Execution.Status.values:
            executions.add_metric([status], counts.get(status, 0))
        yield executions
        yield self._auto_remediations()

    @staticmethod
    def _auto_remediations() -> Metric:
        """Counted from the audit log, the one record of every decision (a skipped
        trigger leaves no ActionRun), so the figure is shared by every process and
        survives restarts; the log is append-only, hence a counter."""
        from opsconsole.models import AuditEntry

        outcome = Case(
            When(action="runbooks.auto_remediation", then=Value("ran")),
            # The reasons written by remediation._limit_reached; every other
            # reason (allowlist, unknown action, failed dry run, destructive
            # without pre-approval) is the console refusing to act.
            When(after__reason__startswith="cooldown", then=Value("skipped-cooldown")),
            When(after__reason__startswith="at most", then=Value("skipped-limit")),
            default=Value("refused"),
            output_field=CharField(),
        )
        rows = (
            AuditEntry.objects.filter(action__in=["runbooks.auto_remediation", "runbooks.auto_remediation_skip"])
            .annotate(outcome=outcome)
            .values_list("outcome")
            .annotate(n=Count("seq"))
            .order_by()
        )
        counts = dict(rows)
        family = CounterMetricFamily(
            "opsconsole_runbook_auto_remediations",
            "Automatic remediation triggers, by outcome (ran, skipped-cooldown, skipped-limit, refused).",
            labels=["outcome"],
        )
        for name in AUTO_OUTCOMES:
            family.add_metric([name], counts.get(name, 0))
        return family
