"""What every checklists service shares: errors, results, status shorthands."""

import datetime
import logging
from dataclasses import dataclass

from django.core.exceptions import ValidationError

from ..models import ChecklistRun, RunItem

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
