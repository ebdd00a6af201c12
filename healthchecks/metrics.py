"""/metrics figures of the checks, read from their stored latest state with
one query at scrape time, under the names Prometheus' blackbox_exporter
uses so that existing dashboards and alert rules apply."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

STATE_VALUES = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}
LABELS = ["check", "service", "type"]


class CheckStateCollector:
    def describe(self) -> Iterable[Metric]:
        """Names only: without describe(), registering the collector in a
        registry with auto_describe would run collect() (the query) twice per scrape."""
        return list(self._families())

    def _families(self) -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily(
                "probe_success",
                "Whether the check's last probe succeeded (state ok).",
                labels=LABELS,
            ),
            GaugeMetricFamily("probe_duration_seconds", "Duration of the check's last probe.", labels=LABELS),
            GaugeMetricFamily("probe_http_status_code", "HTTP status of the last probe.", labels=LABELS),
            GaugeMetricFamily(
                "probe_ssl_earliest_cert_expiry",
                "Expiry of the TLS certificate seen by the last probe (unix time).",
                labels=LABELS,
            ),
            GaugeMetricFamily(
                "opsconsole_check_state",
                "Check state: 0 ok, 1 warning, 2 critical, 3 unknown.",
                labels=LABELS,
            ),
        )

    def collect(self) -> Iterable[Metric]:
        from .models import Check

        success, duration, http_status, cert_expiry, state = self._families()
        rows = (
            Check.objects.filter(enabled=True, last_checked_at__isnull=False)
            .values_list("name", "service__name", "kind", "state", "last_latency_ms", "last_details")
            .order_by("service__name", "name")
        )
        for name, service, kind, check_state, latency, details in rows.iterator(chunk_size=2000):
            labels = [name, service, kind]
            success.add_metric(labels, 1.0 if check_state == "ok" else 0.0)
            state.add_metric(labels, STATE_VALUES.get(check_state, 3))
            if latency is not None:
                duration.add_metric(labels, latency / 1000)
            details = details or {}
            if "http_status" in details:
                http_status.add_metric(labels, details["http_status"])
            if "cert_expiry" in details:
                cert_expiry.add_metric(labels, details["cert_expiry"])
        yield from (success, duration, http_status, cert_expiry, state)
