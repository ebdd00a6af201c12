"""Writes of the checklists app. Each owns its transaction and its audit entry.

Concurrency rules (many SREs tick the same run at once):
- a tick, N/A or untick is ONE conditional UPDATE on one item row
  (`WHERE state = <expected>`); the rowcount says whether this request
  changed anything, so two people never undo each other's work;
- a note/evidence save names the version it edited; a stale version gets a
  NoteConflict carrying both texts instead of overwriting;
- a schedule slot's run is created once: a unique (schedule, slot)
  constraint makes the second INSERT fail and that caller reads the winner's.

Split by concern; every name stays importable from `checklists.services`:

- common      What every checklists service shares: errors, results, status shorthands.
- runs        Runs: created from schedule slots or by hand, marked missed, automatic items refreshed.
- items       Ticking, N/A, reopening and annotating items; signing a run off.
- templates   Editing checklist templates and their schedules; importing Markdown checklists.
"""

from .common import DEFAULT_MANUAL_DUE, WRITABLE, ChecklistError, ItemResult, NoteConflict, State, Status
from .items import item_mark_na, item_reopen, item_save_note, item_tick, run_progress, run_sign_off
from .runs import check_evidence, create_due_runs, create_slot_run, mark_missed_runs, refresh_automatic_items, run_start
from .templates import ITEM_FIELDS, SCHEDULE_FIELDS, TEMPLATE_FIELDS, template_import, template_save

__all__ = [
    "ChecklistError",
    "DEFAULT_MANUAL_DUE",
    "ITEM_FIELDS",
    "ItemResult",
    "NoteConflict",
    "SCHEDULE_FIELDS",
    "State",
    "Status",
    "TEMPLATE_FIELDS",
    "WRITABLE",
    "check_evidence",
    "create_due_runs",
    "create_slot_run",
    "item_mark_na",
    "item_reopen",
    "item_save_note",
    "item_tick",
    "mark_missed_runs",
    "refresh_automatic_items",
    "run_progress",
    "run_sign_off",
    "run_start",
    "template_import",
    "template_save",
]
