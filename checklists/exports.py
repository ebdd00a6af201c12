"""Rows of the checklist-run CSV export; `opsconsole.csv_export` streams and neutralises them."""

from collections.abc import Iterator

from django.db.models import QuerySet

from .models import ChecklistRun

RUN_COLUMNS = [
    "run",
    "title",
    "slot",
    "created_at",
    "due_at",
    "status",
    "started_by",
    "signed_off_by",
    "signed_off_at",
    "minutes_to_complete",
    "items",
    "done",
    "late",
]


def run_rows(runs: QuerySet[ChecklistRun]) -> Iterator[list]:
    """One row per run (annotated with progress by the selector), in chunks."""
    for run in runs.iterator(chunk_size=500):
        minutes = round((run.signed_off_at - run.created_at).total_seconds() / 60, 1) if run.signed_off_at else None
        yield [
            run.pk,
            run.title,
            run.slot,
            run.created_at,
            run.due_at,
            run.status,
            run.started_by,
            run.signed_off_by,
            run.signed_off_at,
            minutes,
            run.total,
            run.done,
            "yes" if run.completed_late else "",
        ]
