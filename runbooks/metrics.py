"""Runbook figures for /metrics, read from the database at scrape time."""

from collections.abc import Iterable

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric


class RunbookCollector:
    """opsconsole_runbook_action_runs{action,status} and opsconsole_runbook_executions{status}."""

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
