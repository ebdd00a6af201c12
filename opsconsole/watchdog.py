"""The watchdog: work that should have happened and did not.

Beat and the workers do the console's timed work (page an escalation level,
create a checklist slot's run, probe a check). When beat is down, a queue
is stuck or a task keeps failing, nothing else notices: no task runs to
complain. The watchdog asks the database instead. Each app registers a probe
in its AppConfig.ready() (the core imports no app):

    watchdog.register_probe("escalation", "Escalation levels not paged", probe)

A probe takes (now, grace) and returns a Finding: how many things are
overdue by more than `grace` (WATCHDOG_GRACE_MINUTES; the probe may use a
larger margin of its own), the oldest due time, and a few examples.

Three readers: /healthz (JSON detail, 503 when something is overdue),
/metrics (opsconsole_watchdog_overdue{kind}, read at scrape time) and the
beat task opsconsole.tasks.run_watchdog, which records each change (overdue
appeared, cleared) in the audit log and logs an ERROR while overdue.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

logger = logging.getLogger(__name__)

OVERDUE, CLEARED = "watchdog.overdue", "watchdog.cleared"


@dataclass(frozen=True)
class Finding:
    count: int = 0
    oldest_due_at: datetime.datetime | None = None
    examples: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Probe:
    kind: str
    label: str
    run: Callable[[datetime.datetime, datetime.timedelta], Finding]


_probes: dict[str, _Probe] = {}


def register_probe(kind: str, label: str, probe: Callable[[datetime.datetime, datetime.timedelta], Finding]) -> None:
    """Apps call this from AppConfig.ready(); registering a kind again replaces it."""
    _probes[kind] = _Probe(kind, label, probe)


def grace() -> datetime.timedelta:
    return datetime.timedelta(minutes=settings.WATCHDOG_GRACE_MINUTES)


def findings(now: datetime.datetime | None = None) -> dict[str, tuple[_Probe, Finding]]:
    now = now or timezone.now()
    return {kind: (probe, probe.run(now, grace())) for kind, probe in sorted(_probes.items())}


def report(now: datetime.datetime | None = None) -> dict:
    """/healthz's "watchdog" section."""
    now = now or timezone.now()
    kinds = {}
    for kind, (probe, finding) in findings(now).items():
        entry = {"label": probe.label, "overdue": finding.count}
        if finding.count:
            entry["oldest_due_at"] = finding.oldest_due_at.isoformat() if finding.oldest_due_at else None
            entry["examples"] = finding.examples[:5]
        kinds[kind] = entry
    overdue = any(entry["overdue"] for entry in kinds.values())
    return {"status": "overdue" if overdue else "ok", "grace_minutes": settings.WATCHDOG_GRACE_MINUTES, "kinds": kinds}


def _last_recorded(kind: str) -> str | None:
    from .models import AuditEntry

    return (
        AuditEntry.objects.filter(action__in=[OVERDUE, CLEARED], after__kind=kind)
        .order_by("-seq")
        .values_list("action", flat=True)
        .first()
    )


def run(now: datetime.datetime | None = None) -> dict[str, int]:
    """The beat task's body: audit each change of state, log while overdue."""
    from . import audit

    now = now or timezone.now()
    counts = {}
    for kind, (probe, finding) in findings(now).items():
        counts[kind] = finding.count
        with transaction.atomic():
            last = _last_recorded(kind)
            detail = {
                "kind": kind,
                "overdue": finding.count,
                "oldest_due_at": finding.oldest_due_at,
                "examples": finding.examples[:5],
            }
            if finding.count and last != OVERDUE:
                audit.record(None, OVERDUE, after=detail)
            elif not finding.count and last == OVERDUE:
                audit.record(None, CLEARED, after=detail)
        if finding.count:
            logger.error(
                "watchdog: %s %s overdue (oldest due %s)",
                finding.count,
                probe.label.lower(),
                finding.oldest_due_at,
                extra={"watchdog_kind": kind, "overdue": finding.count},
            )
    return counts


class WatchdogCollector:
    """/metrics: what is overdue now, by kind (the same queries as /healthz)."""

    def describe(self) -> Iterable[Metric]:
        return list(self._families())

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "opsconsole_watchdog_overdue",
                "Timed work overdue by more than its grace (escalation, checklist_slot, probe).",
                labels=["kind"],
            ),
            GaugeMetricFamily(
                "opsconsole_watchdog_oldest_overdue_seconds",
                "How long ago the oldest overdue item of a kind was due (0: none).",
                labels=["kind"],
            ),
        )

    def collect(self) -> Iterable[Metric]:
        overdue, oldest = self._families()
        now = timezone.now()
        for kind, (_probe, finding) in findings(now).items():
            overdue.add_metric([kind], finding.count)
            age = (now - finding.oldest_due_at).total_seconds() if finding.count and finding.oldest_due_at else 0
            oldest.add_metric([kind], max(age, 0))
        yield overdue
        yield oldest
