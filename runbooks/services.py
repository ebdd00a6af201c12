"""Writes of runbooks: versions. Each owns its transaction and its audit entry.

Concurrency rule: saving names the version it edited (`base_version`); if
someone saved a newer one meanwhile the save is refused (StaleVersion)
instead of silently replacing their steps. The runbook row is locked
(SELECT … FOR UPDATE) while the next version number is taken, so two saves
never get the same number (the unique constraint would refuse it anyway).
"""

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from django.contrib.postgres.search import SearchVector
from django.core.exceptions import ValidationError
from django.db import connection, transaction

from opsconsole import audit
from opsconsole.models import Service
from opsconsole.roles import check_capability

from .models import Runbook, RunbookStep, RunbookVersion

MAX_STEPS = 20000


class StaleVersion(ValidationError):
    """Someone saved a newer version since the editor was opened."""


@dataclass
class StepSpec:
    title: str
    instructions: str = ""
    command: str = ""
    action: str = ""
    action_params: dict = field(default_factory=dict)


def _clean_tags(tags: Iterable[str]) -> list[str]:
    seen = dict.fromkeys(t.strip().lower()[:40] for t in tags if t and t.strip())
    return list(seen)[:20]


def _validate(title: str, steps: list[StepSpec]) -> None:
    from .actions import REGISTRY

    errors = []
    if not title.strip():
        errors.append("A runbook needs a title.")
    if not steps:
        errors.append("A runbook needs at least one step.")
    if len(steps) > MAX_STEPS:
        errors.append(f"At most {MAX_STEPS} steps.")
    for number, step in enumerate(steps, start=1):
        if not step.title.strip():
            errors.append(f"Step {number} needs a title.")
        if step.action and step.action not in REGISTRY:
            errors.append(f"Step {number}: unknown action {step.action!r}.")
    if errors:
        raise ValidationError(errors)


def _search_text(steps: list[StepSpec]) -> str:
    return "\n".join(f"{s.title}\n{s.instructions}\n{s.command}" for s in steps)


def refresh_search_vector(runbook_ids: list[int]) -> None:
    """Title weighs most, then symptoms, then the steps' text (PostgreSQL only)."""
    if connection.vendor != "postgresql" or not runbook_ids:
        return
    Runbook.objects.filter(pk__in=runbook_ids).update(
        search_vector=SearchVector("title", weight="A", config="english")
        + SearchVector("symptoms", weight="B", config="english")
        + SearchVector("search_text", weight="C", config="english")
    )


def _steps_of(version: RunbookVersion | None) -> list[dict]:
    if version is None:
        return []
    return [
        asdict(StepSpec(s.title, s.instructions, s.command, s.action, s.action_params))
        for s in version.steps.all().order_by("order")
    ]


def runbook_save(
    *,
    actor,
    runbook: Runbook | None,
    title: str,
    symptoms: str,
    steps: list[StepSpec],
    services: Iterable[Service] = (),
    tags: Iterable[str] = (),
    change_note: str = "",
    base_version: int | None = None,
    source: str = "",
    check_permission: bool = True,
) -> tuple[Runbook, bool]:
    """Create a runbook or write its next version. Returns (runbook, changed).

    Idempotent: saving exactly the current content writes no version and no
    audit entry (so importing the same file twice changes nothing).
    """
    if check_permission:
        check_capability(actor, "config.edit")
    title = title.strip()[:200]
    _validate(title, steps)
    services = list(services)
    tags = _clean_tags(tags)
    with transaction.atomic():
        if runbook is None:
            clash = Runbook.objects.filter(title=title).exists()
            if clash:
                raise ValidationError(f"A runbook titled {title!r} already exists.")
            runbook = Runbook.objects.create(title=title, symptoms=symptoms, tags=tags, source=source)
            current = None
        else:
            runbook = Runbook.objects.select_for_update().get(pk=runbook.pk)
            current = runbook.current_version
            if base_version is not None and current is not None and current.number != base_version:
                raise StaleVersion(
                    f"{current.created_by or 'Someone'} saved version {current.number} while you were editing "
                    f"version {base_version}. Reload the page to see their changes."
                )
            if title != runbook.title and Runbook.objects.filter(title=title).exclude(pk=runbook.pk).exists():
                raise ValidationError(f"A runbook titled {title!r} already exists.")
        new_steps = [asdict(s) for s in steps]
        same_meta = set(runbook.services.all()) == set(services) and runbook.tags == tags if current else False
        if (
            current is not None
            and same_meta
            and current.title == title
            and current.symptoms == symptoms
            and _steps_of(current) == new_steps
        ):
            return runbook, False
        number = (current.number if current else 0) + 1
        version = RunbookVersion.objects.create(
            runbook=runbook,
            number=number,
            title=title,
            symptoms=symptoms,
            change_note=change_note[:300],
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        RunbookStep.objects.bulk_create(
            [
                RunbookStep(
                    version=version,
                    order=index,
                    title=s.title.strip()[:300],
                    instructions=s.instructions,
                    command=s.command,
                    action=s.action,
                    action_params=s.action_params,
                )
                for index, s in enumerate(steps, start=1)
            ],
            batch_size=2000,
        )
        Runbook.objects.filter(pk=runbook.pk).update(
            title=title,
            symptoms=symptoms,
            tags=tags,
            current_version=version,
            search_text=_search_text(steps),
            source=source or runbook.source,
        )
        runbook.services.set(services)
        refresh_search_vector([runbook.pk])
        runbook.refresh_from_db()
        audit.record(
            actor if getattr(actor, "is_authenticated", False) else None,
            "runbooks.version_create",
            runbook,
            before={"version": current.number} if current else None,
            after={
                "version": number,
                "title": title,
                "steps": len(steps),
                "services": [s.pk for s in services],
                "tags": tags,
                "change_note": change_note[:300],
                "source": source,
            },
        )
    return runbook, True


@dataclass
class NewRunbook:
    title: str
    symptoms: str
    steps: list[StepSpec]
    tags: list[str]
    source: str


def validate(title: str, steps: list[StepSpec]) -> None:
    """ValidationError listing every problem (the importer checks before writing)."""
    _validate(title, steps)


def runbooks_create_bulk(*, actor, new: list[NewRunbook], change_note: str) -> list[Runbook]:
    """Create many validated runbooks at once (an import): a constant number of
    statements whatever the count, and one audit entry naming them all."""
    if not new:
        return []
    user = actor if getattr(actor, "is_authenticated", False) else None
    with transaction.atomic():
        runbooks = Runbook.objects.bulk_create(
            [
                Runbook(
                    title=n.title,
                    symptoms=n.symptoms,
                    tags=_clean_tags(n.tags),
                    source=n.source,
                    search_text=_search_text(n.steps),
                )
                for n in new
            ]
        )
        versions = RunbookVersion.objects.bulk_create(
            [
                RunbookVersion(
                    runbook=r,
                    number=1,
                    title=n.title,
                    symptoms=n.symptoms,
                    change_note=change_note[:300],
                    created_by=user,
                )
                for r, n in zip(runbooks, new, strict=True)
            ]
        )
        RunbookStep.objects.bulk_create(
            [
                RunbookStep(
                    version=v,
                    order=index,
                    title=s.title.strip()[:300],
                    instructions=s.instructions,
                    command=s.command,
                    action=s.action,
                    action_params=s.action_params,
                )
                for v, n in zip(versions, new, strict=True)
                for index, s in enumerate(n.steps, start=1)
            ],
            batch_size=2000,
        )
        for runbook, version in zip(runbooks, versions, strict=True):
            runbook.current_version = version
        Runbook.objects.bulk_update(runbooks, ["current_version"], batch_size=1000)
        refresh_search_vector([r.pk for r in runbooks])
        audit.record(
            user,
            "runbooks.import_create",
            None,
            after={
                "change_note": change_note[:300],
                "created": [[r.pk, r.title, len(n.steps), n.source] for r, n in zip(runbooks, new, strict=True)],
            },
        )
    return runbooks
