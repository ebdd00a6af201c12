"""Runs: created from schedule slots or by hand, marked missed, automatic items refreshed."""

import datetime
import logging

from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from healthchecks.models import Check
from notifications.services import notify_on_call
from opsconsole import audit
from opsconsole.roles import check_capability

from .. import metrics
from ..models import ChecklistRun, ChecklistTemplate, RunItem, Schedule, TemplateItem
from .common import DEFAULT_MANUAL_DUE, WRITABLE, ChecklistError, State, Status

logger = logging.getLogger(__name__)


def check_evidence(check: Check) -> str:
    """The evidence an automatic tick records: the check's result when it was read."""
    when = check.last_checked_at.isoformat(timespec="seconds") if check.last_checked_at else "never"
    # The summary: evidence is read by every role, the detailed message may
    # quote what the probe fetched (docs/healthchecks.md).
    message = f" — {check.last_summary}" if check.last_summary else ""
    return f"Health check “{check.name}”: {check.get_state_display()}{message} (checked {when})"


def _snapshot_items(run: ChecklistRun, template_items: list[TemplateItem], now: datetime.datetime) -> list[RunItem]:
    items = []
    for source in template_items:
        check = source.health_check
        passing = check is not None and check.is_passing
        items.append(
            RunItem(
                run=run,
                template_item=source,
                order=source.order,
                section=source.section,
                text=source.text,
                help=source.help,
                required=source.required,
                runbook_id=source.runbook_id,
                runbook_url=source.runbook_url,
                expected_evidence=source.expected_evidence,
                health_check=check,
                state=State.TICKED if passing else State.OPEN,
                ticked_at=now if passing else None,
                automatic=passing,
                evidence=check_evidence(check) if passing else "",
                updated_at=now,
            )
        )
    return RunItem.objects.bulk_create(items)


def _template_items(template: ChecklistTemplate) -> list[TemplateItem]:
    return list(template.items.select_related("health_check").order_by("order", "id"))


def _audit_run_created(actor, run: ChecklistRun, items: list[RunItem]) -> None:
    audit.record(
        actor,
        "checklists.run_create",
        run,
        after={
            "template": run.template_id,
            "schedule": run.schedule_id,
            "slot": run.slot,
            "due_at": run.due_at,
            "items": len(items),
            "auto_ticked": sum(1 for item in items if item.automatic),
        },
    )


def create_slot_run(schedule: Schedule, slot: datetime.datetime, now: datetime.datetime) -> tuple[ChecklistRun, bool]:
    """Create the run of one schedule slot. Idempotent and race-safe: the
    unique (schedule, slot) constraint lets exactly one caller insert; every
    other caller — another beat, a retried task — gets the existing run and
    created=False."""
    try:
        with transaction.atomic():
            run = ChecklistRun.objects.create(
                template=schedule.template,
                schedule=schedule,
                title=schedule.template.name,
                offers_handoff=schedule.template.offers_handoff,
                slot=slot,
                created_at=now,
                due_at=slot + schedule.due_within,
            )
            items = _snapshot_items(run, _template_items(schedule.template), now)
            _audit_run_created(None, run, items)
            transaction.on_commit(lambda: metrics.count_auto_ticks(sum(1 for i in items if i.automatic)))
            return run, True
    except IntegrityError:
        # The other INSERT committed first (we waited on its unique-index entry).
        return ChecklistRun.objects.get(schedule=schedule, slot=slot), False


def create_due_runs(now: datetime.datetime | None = None) -> list[ChecklistRun]:
    """Create the run of every schedule slot whose time has come and whose due
    time has not passed yet. Idempotent: a second call creates nothing.
    Slots missed while beat was down for longer than `due_within` are not
    created after the fact. Returns the runs this call created."""
    now = now or timezone.now()
    created = []
    schedules = Schedule.objects.filter(enabled=True, template__is_active=True).select_related("template")
    for schedule in schedules:
        for slot in schedule.slots_between(now - schedule.due_within, now):
            if ChecklistRun.objects.filter(schedule=schedule, slot=slot).exists():
                continue
            run, was_created = create_slot_run(schedule, slot, now)
            if was_created:
                created.append(run)
    return created


@transaction.atomic
def run_start(*, actor, template: ChecklistTemplate, due_within: datetime.timedelta | None = None) -> ChecklistRun:
    """Start a run by hand (a maintenance window, a release)."""
    check_capability(actor, "checklist.tick")
    if not template.is_active:
        raise ChecklistError(f"“{template.name}” is archived; it cannot be started.")
    now = timezone.now()
    run = ChecklistRun.objects.create(
        template=template,
        title=template.name,
        offers_handoff=template.offers_handoff,
        started_by=actor,
        created_at=now,
        due_at=now + (due_within or DEFAULT_MANUAL_DUE),
    )
    items = _snapshot_items(run, _template_items(template), now)
    _audit_run_created(actor, run, items)
    return run


def _notify_missed(run: ChecklistRun) -> None:
    """Tell the on-call SRE. Called inside the transaction that marks the run
    missed: notify_on_call creates its deliveries there (nothing is sent if
    it rolls back)."""
    title = f"Checklist missed: {run.title}"
    text = f"“{run.title}” was due at {run.due_at:%Y-%m-%d %H:%M} UTC and is not signed off."
    url = reverse("checklists:run", args=[run.pk])
    notify_on_call(event="checklist.missed", title=title, text=text, url=url)


def mark_missed_runs(now: datetime.datetime | None = None) -> list[int]:
    """Mark open runs whose due time has passed as missed and notify the
    on-call SRE once per run. Idempotent: the UPDATE only matches open runs,
    so a second call (or a second beat) finds nothing and notifies nobody."""
    now = now or timezone.now()
    marked = []
    candidates = list(ChecklistRun.objects.filter(status=Status.OPEN, due_at__lt=now).values_list("pk", flat=True))
    for run_id in candidates:
        with transaction.atomic():
            # Conditional: a sign-off that commits first wins and this does nothing.
            if not ChecklistRun.objects.filter(pk=run_id, status=Status.OPEN).update(
                status=Status.MISSED, missed_at=now, updated_at=now
            ):
                continue
            run = ChecklistRun.objects.get(pk=run_id)
            audit.record(None, "checklists.run_missed", run, after={"due_at": run.due_at, "missed_at": now})
            _notify_missed(run)
            marked.append(run_id)
    return marked


def refresh_automatic_items(now: datetime.datetime | None = None) -> int:
    """Tick open items of unfinished runs whose bound health check is passing
    now. Idempotent: each UPDATE only matches items that are still open."""
    now = now or timezone.now()
    ticked = 0
    items = RunItem.objects.filter(
        state=State.OPEN, health_check__state=Check.State.OK, run__status__in=WRITABLE
    ).select_related("health_check")
    for item in items:
        with transaction.atomic():
            evidence = check_evidence(item.health_check)
            if RunItem.objects.filter(pk=item.pk, state=State.OPEN).update(
                state=State.TICKED,
                ticked_at=now,
                ticked_by=None,
                automatic=True,
                evidence=evidence,
                updated_at=now,
            ):
                audit.record(None, "checklists.item_auto_tick", item, after={"evidence": evidence})
                ticked += 1
    metrics.count_auto_ticks(ticked)
    return ticked
