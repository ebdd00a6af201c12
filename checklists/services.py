"""Writes of the checklists app. Each owns its transaction and its audit entry.

Concurrency rules (many SREs tick the same run at once):
- a tick, N/A or untick is ONE conditional UPDATE on one item row
  (`WHERE state = <expected>`); the rowcount says whether this request
  changed anything, so two people never undo each other's work;
- a note/evidence save names the version it edited; a stale version gets a
  NoteConflict carrying both texts instead of overwriting;
- a schedule slot's run is created once: a unique (schedule, slot)
  constraint makes the second INSERT fail and that caller reads the winner's.
"""

import datetime
import logging
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from healthchecks.models import Check
from notifications.services import notify_on_call
from opsconsole import audit
from opsconsole.models import User
from opsconsole.roles import check_capability

from . import metrics
from .models import ChecklistRun, ChecklistTemplate, RunItem, Schedule, TemplateItem

logger = logging.getLogger(__name__)

Status = ChecklistRun.Status
State = RunItem.State
WRITABLE = [Status.OPEN, Status.MISSED]
DEFAULT_MANUAL_DUE = datetime.timedelta(hours=4)


class ChecklistError(ValidationError):
    """A refused action with a message for the person who asked."""


@dataclass
class ItemResult:
    """What an item action did: `changed` is False when someone else got there first."""

    item: RunItem
    changed: bool
    message: str = ""

    @property
    def progress(self) -> dict:
        """The run's counts as of this action (annotated by _load_item)."""
        return {
            "total": self.item.progress_total or 0,
            "done": self.item.progress_done or 0,
            "required_open": self.item.progress_required_open or 0,
        }


class NoteConflict(Exception):
    """The note/evidence was changed by someone else since the editor loaded it."""

    def __init__(self, current: RunItem, mine_note: str, mine_evidence: str):
        self.current = current
        self.mine_note = mine_note
        self.mine_evidence = mine_evidence
        who = current.note_updated_by or "someone"
        super().__init__(f"Changed by {who} meanwhile; your text is kept below — merge and save again.")


# --- Run creation -----------------------------------------------------------


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


# --- Missed runs --------------------------------------------------------------


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


# --- Automatic items ----------------------------------------------------------


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


# --- Ticking -----------------------------------------------------------------


def _writable(run_id: int):
    """`run_id IN (SELECT id FROM run WHERE status <> completed)`. A subquery
    on the run, not a join: with a join Django would move the whole filter,
    `state = 'open'` included, into an `id IN (SELECT ...)` that PostgreSQL
    does not re-check after waiting on the row lock, and two concurrent ticks
    would both "win". Kept in the outer WHERE, the state test is re-checked
    on the latest row version."""
    return ChecklistRun.objects.filter(pk=run_id, status__in=WRITABLE).values("pk")


# The tick path is the console's busiest write: its two statements are plain
# SQL, built once, because compiling the equivalent ORM queries cost more CPU
# than the rest of the request (see bench/checklists_bench.py).
_ITEM_FIELDS = [f.column for f in RunItem._meta.concrete_fields]
_RUN, _ITEM = ChecklistRun._meta.db_table, RunItem._meta.db_table
_USER, _CHECK = User._meta.db_table, Check._meta.db_table
_LOAD_ITEM_SQL = f"""
SELECT {", ".join(f'i."{column}"' for column in _ITEM_FIELDS)},
       r.status, r.due_at, r.title,
       tb.username, tb.first_name, tb.last_name,
       nb.username, nb.first_name, nb.last_name,
       hc.name, hc.state,
       (SELECT count(*) FROM {_ITEM} s WHERE s.run_id = i.run_id),
       (SELECT count(*) FROM {_ITEM} s WHERE s.run_id = i.run_id AND s.state <> 'open'),
       (SELECT count(*) FROM {_ITEM} s
         WHERE s.run_id = i.run_id AND s.required AND s.state = 'open')
FROM {_ITEM} i
JOIN {_RUN} r ON r.id = i.run_id
LEFT JOIN {_USER} tb ON tb.id = i.ticked_by_id
LEFT JOIN {_USER} nb ON nb.id = i.note_updated_by_id
LEFT JOIN {_CHECK} hc ON hc.id = i.health_check_id
WHERE i.id = %s AND i.run_id = %s
"""
# Conditional: only an open item of a writable run changes. The run test is a
# subquery so that `state = 'open'` stays in the outer WHERE, which
# PostgreSQL re-checks on the latest row version after a concurrent tick.
_TICK_SQL = f"""
UPDATE {_ITEM}
SET state = 'ticked', ticked_by_id = %s, ticked_at = %s, automatic = false, updated_at = %s
WHERE id = %s AND run_id = %s AND state = 'open'
  AND run_id IN (SELECT id FROM {_RUN} WHERE id = %s AND status IN ('open', 'missed'))
"""


def _person(user_id, username, first_name, last_name) -> User | None:
    if user_id is None:
        return None
    return User(id=user_id, username=username, first_name=first_name, last_name=last_name)


def _load_item(run_id: int, item_id: int) -> RunItem:
    """The item with its people, check and run, and the run's progress counts,
    in ONE query (raw SQL: this is the tick path)."""
    with connection.cursor() as cursor:
        cursor.execute(_LOAD_ITEM_SQL, [item_id, run_id])
        row = cursor.fetchone()
    if row is None:
        raise RunItem.DoesNotExist
    n = len(_ITEM_FIELDS)
    item = RunItem(**{f.attname: value for f, value in zip(RunItem._meta.concrete_fields, row[:n], strict=True)})
    status, due_at, title, *rest = row[n:]
    item.run = ChecklistRun(id=item.run_id, status=status, due_at=due_at, title=title)
    item.ticked_by = _person(item.ticked_by_id, *rest[0:3])
    item.note_updated_by = _person(item.note_updated_by_id, *rest[3:6])
    item.health_check = Check(id=item.health_check_id, name=rest[6], state=rest[7]) if item.health_check_id else None
    item.progress_total, item.progress_done, item.progress_required_open = rest[8:11]
    return item


def _refusal(item: RunItem, action: str) -> str:
    if item.run.status == Status.COMPLETED:
        return "This run is signed off; it can no longer change."
    if item.state == State.TICKED:
        who = "the console (health check)" if item.automatic else (item.ticked_by or "someone")
        return f"Already ticked by {who}." if action == "tick" else f"Ticked by {who}; untick it first."
    if item.state == State.NA:
        return f"Marked N/A by {item.ticked_by or 'someone'}; reopen it first."
    return "Already open."


def item_tick(*, actor, run_id: int, item_id: int) -> ItemResult:
    """Tick an open item. Never undoes anyone's work: only an item that is
    still open changes; otherwise the current state is returned unchanged."""
    check_capability(actor, "checklist.tick")
    now = timezone.now()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_TICK_SQL, [actor.pk, now, now, item_id, run_id, run_id])
            changed = cursor.rowcount
        item = _load_item(run_id, item_id)
        if changed:
            audit.record(actor, "checklists.item_tick", item, after={"run": run_id, "ticked_at": now})
            transaction.on_commit(metrics.count_tick)
    return ItemResult(item, bool(changed), "" if changed else _refusal(item, "tick"))


def item_mark_na(*, actor, run_id: int, item_id: int, reason: str) -> ItemResult:
    """Mark an open item not applicable, with a reason."""
    check_capability(actor, "checklist.tick")
    reason = (reason or "").strip()
    if not reason:
        raise ChecklistError("Say why this item does not apply.")
    if len(reason) > 300:
        raise ChecklistError("Keep the reason under 300 characters.")
    now = timezone.now()
    with transaction.atomic():
        changed = RunItem.objects.filter(pk=item_id, run_id=run_id, state=State.OPEN, run__in=_writable(run_id)).update(
            state=State.NA,
            na_reason=reason,
            ticked_by=actor,
            ticked_at=now,
            automatic=False,
            updated_at=now,
        )
        item = _load_item(run_id, item_id)
        if changed:
            audit.record(actor, "checklists.item_na", item, after={"run": run_id, "reason": reason})
    return ItemResult(item, bool(changed), "" if changed else _refusal(item, "na"))


def item_reopen(*, actor, run_id: int, item_id: int) -> ItemResult:
    """Untick (or un-N/A) an item. Locks the run row first so that a
    concurrent sign-off cannot complete a run whose required item was just
    reopened (the sign-off holds the same lock while it counts)."""
    check_capability(actor, "checklist.tick")
    now = timezone.now()
    with transaction.atomic():
        run = ChecklistRun.objects.select_for_update().only("status").get(pk=run_id)
        changed = 0
        if run.status in WRITABLE:
            before = RunItem.objects.filter(pk=item_id, run_id=run_id).values("state", "ticked_by", "na_reason").first()
            changed = RunItem.objects.filter(pk=item_id, run_id=run_id, state__in=[State.TICKED, State.NA]).update(
                state=State.OPEN,
                ticked_by=None,
                ticked_at=None,
                na_reason="",
                automatic=False,
                updated_at=now,
            )
        item = _load_item(run_id, item_id)
        if changed:
            audit.record(actor, "checklists.item_reopen", item, before=before, after={"state": State.OPEN})
    return ItemResult(item, bool(changed), "" if changed else _refusal(item, "reopen"))


def item_save_note(*, actor, run_id: int, item_id: int, note: str, evidence: str, version: int) -> ItemResult:
    """Save an item's note and evidence if nobody changed them since `version`.

    Raises NoteConflict (with the current and the submitted texts) when the
    version moved on: the second editor sees both, nothing is lost."""
    check_capability(actor, "checklist.tick")
    note, evidence = (note or "").strip(), (evidence or "").strip()
    if len(note) > 5000 or len(evidence) > 2000:
        raise ChecklistError("The note is limited to 5000 characters and the evidence to 2000.")
    now = timezone.now()
    with transaction.atomic():
        before = RunItem.objects.filter(pk=item_id, run_id=run_id).values("note", "evidence").first()
        if before is None:
            raise RunItem.DoesNotExist
        if before["note"] == note and before["evidence"] == evidence:
            return ItemResult(_load_item(run_id, item_id), False, "Nothing changed.")
        changed = RunItem.objects.filter(pk=item_id, run_id=run_id, version=version, run__in=_writable(run_id)).update(
            note=note,
            evidence=evidence,
            note_updated_by=actor,
            note_updated_at=now,
            updated_at=now,
            version=version + 1,
        )
        item = _load_item(run_id, item_id)
        if not changed:
            if item.run.status == Status.COMPLETED:
                raise ChecklistError("This run is signed off; it can no longer change.")
            raise NoteConflict(item, note, evidence)
        audit.record(
            actor,
            "checklists.item_note",
            item,
            before=before,
            after={"note": note, "evidence": evidence},
        )
    return ItemResult(item, True)


def run_sign_off(*, actor, run: ChecklistRun) -> ChecklistRun:
    """Sign a run off once every required item is ticked or N/A.

    Holds the run row lock while counting, so a concurrent reopen (which takes
    the same lock) cannot slip an open required item into a signed-off run."""
    check_capability(actor, "checklist.tick")
    now = timezone.now()
    with transaction.atomic():
        locked = ChecklistRun.objects.select_for_update().get(pk=run.pk)
        if locked.status == Status.COMPLETED:
            raise ChecklistError(f"Already signed off by {locked.signed_off_by} at {locked.signed_off_at:%H:%M}.")
        open_required = list(
            locked.items.filter(required=True, state=State.OPEN).order_by("order", "id").values_list("text", flat=True)
        )
        if open_required:
            shown = "; ".join(open_required[:5]) + ("…" if len(open_required) > 5 else "")
            raise ChecklistError(f"{len(open_required)} required item(s) are neither ticked nor N/A: {shown}")
        before = {"status": locked.status}
        locked.status = Status.COMPLETED
        locked.signed_off_by = actor
        locked.signed_off_at = now
        locked.save(update_fields=["status", "signed_off_by", "signed_off_at", "updated_at"])
        audit.record(
            actor,
            "checklists.run_sign_off",
            locked,
            before=before,
            after={"status": locked.status, "late": locked.completed_late},
        )
    return locked


def run_progress(run_id: int) -> dict:
    """Counts for the progress bar, in one aggregate query."""
    return RunItem.objects.filter(run_id=run_id).aggregate(
        total=Count("id"),
        done=Count("id", filter=~Q(state=State.OPEN)),
        required_open=Count("id", filter=Q(required=True, state=State.OPEN)),
    )


# --- Template editing ----------------------------------------------------------

TEMPLATE_FIELDS = ("name", "description", "offers_handoff", "is_active")
ITEM_FIELDS = (
    "order",
    "section",
    "text",
    "help",
    "required",
    "runbook_url",
    "expected_evidence",
    "health_check_id",
)
SCHEDULE_FIELDS = ("time_of_day", "days_of_week", "timezone", "due_within", "enabled")


def _require_editor(actor) -> None:
    check_capability(actor, "config.edit")


@transaction.atomic
def template_save(*, actor, template: ChecklistTemplate, item_forms=None, schedule_forms=None) -> ChecklistTemplate:
    """Save a template with its items and schedules (validated form and
    formsets). Past runs never change: they hold their own copies of the items."""
    _require_editor(actor)
    created = template.pk is None
    before = None if created else audit.snapshot(ChecklistTemplate.objects.get(pk=template.pk), TEMPLATE_FIELDS)
    template.save()
    after = audit.snapshot(template, TEMPLATE_FIELDS)
    if before != after:
        action = "checklists.template_create" if created else "checklists.template_update"
        audit.record(actor, action, template, before=before, after=after)
    for formset, fields, label in (
        (item_forms, ITEM_FIELDS, "item"),
        (schedule_forms, SCHEDULE_FIELDS, "schedule"),
    ):
        if formset is None:
            continue
        formset.instance = template
        for obj in formset.save():
            audit.record(actor, f"checklists.{label}_save", obj, after=audit.snapshot(obj, fields))
        for obj in formset.deleted_objects:
            audit.record(actor, f"checklists.{label}_delete", template, before=audit.snapshot(obj, fields))
    return template


def template_import(
    *, actor, name: str, parsed, description: str = "", update: bool = False
) -> tuple[ChecklistTemplate, bool]:
    """Create (or, with update=True, replace the items of) a template from a
    parsed checklist. Idempotent when update=False: an existing template of
    that name is left as it is."""
    with transaction.atomic():
        template, created = ChecklistTemplate.objects.get_or_create(
            name=name, defaults={"description": description or parsed.description}
        )
        if not created and not update:
            return template, False
        template.items.all().delete()
        TemplateItem.objects.bulk_create(
            TemplateItem(
                template=template,
                order=(index + 1) * 10,
                section=item.section,
                text=item.text,
                help=item.help,
                required=item.required,
                expected_evidence=item.expected_evidence,
            )
            for index, item in enumerate(parsed.items)
        )
        audit.record(
            actor,
            "checklists.template_import",
            template,
            after={"source": parsed.source, "title": parsed.title, "items": len(parsed.items)},
        )
    return template, created
