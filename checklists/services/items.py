"""Ticking, N/A, reopening and annotating items; signing a run off.

The concurrency rules are in the package docstring (checklists/services/__init__.py)."""

import logging

from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from healthchecks.models import Check
from opsconsole import audit
from opsconsole.models import User
from opsconsole.roles import check_capability

from .. import metrics
from ..models import EVIDENCE_MAX_LENGTH, NA_REASON_MAX_LENGTH, NOTE_MAX_LENGTH, ChecklistRun, RunItem
from .common import WRITABLE, ChecklistError, ItemResult, NoteConflict, State, Status

logger = logging.getLogger(__name__)


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

# Status values as SQL literals, from the TextChoices (never typed twice).
_OPEN, _TICKED = f"'{State.OPEN.value}'", f"'{State.TICKED.value}'"
_WRITABLE = ", ".join(f"'{status.value}'" for status in WRITABLE)


def _item_select(source: str, *, just_ticked: bool = False, more: str = "") -> str:
    """SELECT of an item row `i` (from `source`) with its run, people, check
    and the run's progress counts: what _row_to_item reads.

    `just_ticked`: `source` is the row an UPDATE in the same statement has
    just ticked. The rest of the statement sees the table as it began, so
    the counts take every other item from the table and this one as ticked
    (done, not open). `more`: columns after those (", x, y")."""
    other, plus_this = (" AND s.id <> i.id", " + 1") if just_ticked else ("", "")
    return f"""
SELECT {", ".join(f'i."{column}"' for column in _ITEM_FIELDS)},
       r.status, r.due_at, r.title,
       tb.username, tb.first_name, tb.last_name,
       nb.username, nb.first_name, nb.last_name,
       hc.name, hc.state,
       (SELECT count(*) FROM {_ITEM} s WHERE s.run_id = i.run_id),
       (SELECT count(*) FROM {_ITEM} s WHERE s.run_id = i.run_id AND s.state <> {_OPEN}{other}){plus_this},
       (SELECT count(*) FROM {_ITEM} s
         WHERE s.run_id = i.run_id AND s.required AND s.state = {_OPEN}{other}){more}
FROM {source} i
JOIN {_RUN} r ON r.id = i.run_id
LEFT JOIN {_USER} tb ON tb.id = i.ticked_by_id
LEFT JOIN {_USER} nb ON nb.id = i.note_updated_by_id
LEFT JOIN {_CHECK} hc ON hc.id = i.health_check_id
"""  # nosec B608  # table and column names come from model _meta


_LOAD_ITEM_SQL = _item_select(_ITEM) + "WHERE i.id = %s AND i.run_id = %s"

# Conditional: only an open item of a writable run changes. The run test is a
# subquery so that `state = 'open'` stays in the outer WHERE, which
# PostgreSQL re-checks on the latest row version after a concurrent tick.
# The ticked row comes back with its run, people and progress, and its audit
# row is appended (joined LATERAL on the ticked row: no row ticked, no call),
# all in ONE statement: atomic by itself, so no BEGIN and COMMIT either (the
# tick was BEGIN, this UPDATE, the audit append, COMMIT). The audit heads
# must exist before it writes (the append returns no row without them).
_TICK_SQL = f"""
WITH ticked AS (
    UPDATE {_ITEM}
    SET state = {_TICKED}, ticked_by_id = %s, ticked_at = %s, automatic = false, updated_at = %s
    WHERE id = %s AND run_id = %s AND state = {_OPEN}
      AND run_id IN (SELECT id FROM {_RUN} WHERE id = %s AND status IN ({_WRITABLE}))
      AND {audit.StatementAppend.heads_exist_sql}
    RETURNING *
)
{_item_select("ticked", just_ticked=True, more=", appended.*")}
CROSS JOIN LATERAL {audit.StatementAppend.call_sql("i.text")} AS appended
"""  # nosec B608  # table and column names come from model _meta, every value is a %s parameter


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
    return _row_to_item(row)


def _row_to_item(row: tuple) -> RunItem:
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
    still open changes; otherwise the current state is returned unchanged.
    The UPDATE and its audit row are one statement (_TICK_SQL)."""
    check_capability(actor, "checklist.tick")
    now = timezone.now()
    if connection.vendor != "postgresql":  # SQLite (`make run`) has no UPDATE inside WITH
        return _tick_in_two_statements(actor, run_id, item_id, now)
    for attempt in range(2):
        append = audit.StatementAppend(
            actor, "checklists.item_tick", RunItem, item_id, after={"run": run_id, "ticked_at": now}
        )
        params = [actor.pk, now, now, item_id, run_id, run_id, *append.heads_exist_params, *append.params]
        with connection.cursor() as cursor:
            cursor.execute(_TICK_SQL, params)
            row = cursor.fetchone()
        if row is not None:
            break
        # Not ticked: someone was first, the run is signed off, no such item
        # (DoesNotExist) — the item as it stands, for the refusal. An item
        # still open in a writable run means the audit heads were missing (a
        # new or flushed database; another request may be making them now):
        # make them, then the same tick again.
        item = _load_item(run_id, item_id)
        if attempt or item.state != State.OPEN or item.run.status not in WRITABLE:
            return ItemResult(item, False, _refusal(item, "tick"))
        audit.ensure_heads(append.count)
    item = _row_to_item(row[:-5])
    append.done(row[-5:], item)
    transaction.on_commit(metrics.count_tick)
    return ItemResult(item, True, "")


def _tick_in_two_statements(actor, run_id: int, item_id: int, now) -> ItemResult:
    """item_tick on databases other than PostgreSQL: the conditional UPDATE,
    the item read back and the audit append, in one transaction."""
    with transaction.atomic():
        changed = RunItem.objects.filter(pk=item_id, run_id=run_id, state=State.OPEN, run__in=_writable(run_id)).update(
            state=State.TICKED, ticked_by=actor, ticked_at=now, automatic=False, updated_at=now
        )
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
    if len(reason) > NA_REASON_MAX_LENGTH:
        raise ChecklistError(f"Keep the reason to {NA_REASON_MAX_LENGTH} characters (it has {len(reason)}).")
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
    if len(note) > NOTE_MAX_LENGTH or len(evidence) > EVIDENCE_MAX_LENGTH:
        raise ChecklistError(
            f"The note is limited to {NOTE_MAX_LENGTH:,} characters and the evidence to {EVIDENCE_MAX_LENGTH:,} "
            f"(they have {len(note):,} and {len(evidence):,})."
        )
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
