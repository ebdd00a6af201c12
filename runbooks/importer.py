"""Runbooks from the Markdown operations guides, through the shared reader.

A section becomes a runbook when it holds numbered steps (an ordered list of
two or more items) or command blocks (fenced shell code):

- each numbered item is a step: its first line the title, the rest its
  instructions, a fenced block inside it (or a leading `code span`) its command;
- a shell block is split at its `# comment` lines: each comment starts a
  step titled by it, the lines below are its command; a block without
  comments is one step titled by the paragraph before it (“Generate:”);
- sub-sections titled “Step N: …” are steps of their parent section.

What the section says before its steps (“**Symptoms:**” and its list, an
introduction) becomes the runbook's symptoms. The runbook's identity is
`file#section-path`, so importing the same file twice changes nothing and
an edited file writes a new version of the same runbook.

Other apps add their own extractors (checklists registers one for
`[ ]` lists in its AppConfig.ready()), so one command and one upload form
import everything a document holds without runbooks importing them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.text import slugify

from opsconsole.markdown_reader import Block, Section, UnreadableDocument, decode, plain, read_sections

from .services import StepSpec

COMMAND_LANGS = {"", "bash", "sh", "shell", "console", "zsh", "powershell", "ps", "cmd", "shell-session"}
STEP_HEADING = re.compile(r"^step\s+\d+\s*[:.)-]?\s*", re.IGNORECASE)
NUMBERING = re.compile(r"^\s*(?:(?:scenario|playbook|runbook|step)\s+\d+\s*[:.)-]\s*|\d+(?:\.\d+)*[.)]?\s+)", re.I)


@dataclass
class ParsedRunbook:
    title: str
    source: str  # "file#section-path"
    line: int
    symptoms: str = ""
    steps: list[StepSpec] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    """One line of an import report."""

    kind: str  # "runbook", "checklist", "file"
    title: str
    verb: str  # "created", "updated", "unchanged", "skipped", "refused"
    detail: str = ""
    line: int = 0

    def __str__(self) -> str:
        where = f":{self.line}" if self.line else ""
        return f"{self.kind}{where} {self.title!r}: {self.verb}" + (f" — {self.detail}" if self.detail else "")


# name → fn(sections, source, actor, dry_run) -> list[Outcome]
Extractor = Callable[[list[Section], str, object, bool], list[Outcome]]
_extractors: dict[str, Extractor] = {}


def register_extractor(name: str, extractor: Extractor) -> None:
    _extractors[name] = extractor


def clean_title(text: str) -> str:
    text = plain(NUMBERING.sub("", plain(text)))
    return re.sub(r"[\s:]+$", "", text)[:200] or "Runbook"


def _first_line(text: str) -> str:
    line = plain(text.split("\n")[0]).rstrip(":").strip()
    return line[:300] or "Step"


def _is_command(block: Block) -> bool:
    return (
        block.kind in ("fence", "code")
        and block.language in COMMAND_LANGS
        and not re.search(r"^\s*(?:[-*]\s+)?\[[ xX]\]\s", block.text, re.MULTILINE)
    )


def _leading_code(text: str) -> str:
    match = re.match(r"^\s*`([^`]+)`", text)
    return match.group(1) if match else ""


def _is_steps(block: Block) -> bool:
    """Two or more numbered items that are not just links (a table of contents)."""
    if block.kind != "list" or not block.ordered or len(block.items) < 2:
        return False
    return not all(re.fullmatch(r"\s*\[[^\]]*\]\([^)]*\)\s*", item.text) for item in block.items)


def _item_step(item) -> StepSpec:
    commands = [b.text.rstrip("\n") for b in item.blocks if b.kind in ("fence", "code")]
    rest = [b.source for b in item.blocks if b.kind not in ("fence", "code") and b.source]
    lines = item.text.split("\n")
    instructions = "\n".join([*lines[1:], *rest]).strip()
    if len(plain(lines[0])) > 300:
        instructions = item.text
    command = "\n\n".join(commands) or _leading_code(item.text)
    return StepSpec(_first_line(item.text), instructions=instructions, command=command)


def _fence_steps(block: Block, before: str) -> list[StepSpec]:
    """A shell block split at its `# comment` lines."""
    steps: list[StepSpec] = []
    current: StepSpec | None = None
    pending: list[str] = []
    for raw in block.text.rstrip("\n").split("\n"):
        line = raw.rstrip()
        if line.startswith("#!"):
            continue  # a shebang is not a step
        comment = re.match(r"^#\s*(.*)$", line.strip())
        if comment:
            text = comment.group(1).strip()
            if current is not None and not current.command:
                current.instructions = (current.instructions + "\n" + text).strip()
                continue
            current = StepSpec(text.rstrip(":")[:300] or "Step")
            steps.append(current)
        elif line.strip():
            if current is None:
                pending.append(line)
            else:
                current.command = (current.command + "\n" + line).strip("\n")
        elif current is not None and current.command:
            current.command += "\n"
    if pending:
        title = _first_line(before) if before else f"Run {pending[0].strip()[:60]}"
        steps.insert(0, StepSpec(title, command="\n".join(pending)))
    for step in steps:
        step.command = step.command.strip("\n")
    return [s for s in steps if s.command or s.instructions or s.title]


def _symptoms(blocks: list[Block]) -> str:
    parts = []
    for block in blocks:
        if block.kind == "paragraph" and plain(block.text).rstrip(":").lower() in ("resolution", "steps", "fix"):
            continue
        if block.kind in ("paragraph", "list", "quote") and block.source:
            parts.append(block.source)
    return "\n\n".join(parts)[:5000]


def _section_runbook(section: Section, children: list[Section], source: str) -> ParsedRunbook | None:
    steps: list[StepSpec] = []
    intro: list[Block] = []
    before = ""
    numbered = any(_is_steps(b) for b in section.blocks)
    for block in section.blocks:
        if numbered:
            # Numbered steps; a list broken by an unindented command block goes on
            # after it (“10.” needs four spaces of indent), and the block belongs
            # to the step before it.
            if block.kind == "list" and block.ordered and (steps or _is_steps(block)):
                steps.extend(_item_step(item) for item in block.items)
            elif steps and _is_command(block) and not steps[-1].command:
                steps[-1].command = block.text.rstrip("\n")
            elif not steps:
                intro.append(block)
            continue
        if _is_command(block):
            steps.extend(_fence_steps(block, before))
            before = ""
        elif block.kind == "paragraph":
            before = block.text
            if not steps:
                intro.append(block)
        elif not steps:
            intro.append(block)
    for child in children:  # "Step 1: Acknowledge" sub-sections
        commands = [b.text.rstrip("\n") for b in child.blocks if _is_command(b)]
        text = "\n\n".join(b.source for b in child.blocks if b.kind in ("paragraph", "list") and b.source)
        steps.append(StepSpec(STEP_HEADING.sub("", plain(child.title))[:300] or "Step", text, "\n\n".join(commands)))
    if not steps:
        return None
    path = "/".join(slugify(t) for t in (*section.path, section.title) if t)
    return ParsedRunbook(
        clean_title(section.title or "Runbook"),
        source=f"{source}#{path}"[:300],
        line=section.line,
        symptoms=_symptoms(intro),
        steps=steps,
        tags=["imported"],
    )


def runbooks_in(sections: list[Section], source: str = "") -> list[ParsedRunbook]:
    found = []
    for index, section in enumerate(sections):
        if not section.title or STEP_HEADING.match(plain(section.title)):
            continue
        children = []
        for later in sections[index + 1 :]:
            if later.level <= section.level:
                break
            if later.level == section.level + 1 and STEP_HEADING.match(plain(later.title)):
                children.append(later)
        parsed = _section_runbook(section, children, source)
        if parsed is not None:
            found.append(parsed)
    return found


def read_document(data: bytes, name: str) -> list[Section]:
    if len(data) > settings.RUNBOOK_IMPORT_MAX_BYTES:
        raise UnreadableDocument(f"{name}: larger than RUNBOOK_IMPORT_MAX_BYTES ({settings.RUNBOOK_IMPORT_MAX_BYTES})")
    text, _encoding = decode(data, name)
    return read_sections(text)


def import_runbooks(sections: list[Section], source: str, *, actor, dry_run: bool = False) -> list[Outcome]:
    """One transaction per document: a file is imported whole (and fast)."""
    with transaction.atomic():
        return _import_runbooks(sections, source, actor=actor, dry_run=dry_run)


def _text(step) -> tuple[str, str, str]:
    return (step.title.strip()[:300], step.instructions, step.command)


def _same(runbook, parsed: ParsedRunbook) -> bool:
    """Same text as the file. Actions are not compared: Markdown cannot express
    them, so an action someone bound to a step survives a re-import."""
    current = runbook.current_version
    if current is None or current.symptoms != parsed.symptoms:
        return False
    return [_text(s) for s in current.steps.all()] == [_text(s) for s in parsed.steps]


def _keep_actions(runbook, parsed: ParsedRunbook) -> None:
    """Steps that keep their title keep the action bound to them."""
    bound = {s.title: s for s in runbook.current_version.steps.all() if s.action} if runbook.current_version else {}
    for step in parsed.steps:
        if step.title.strip()[:300] in bound and not step.action:
            step.action = bound[step.title.strip()[:300]].action
            step.action_params = bound[step.title.strip()[:300]].action_params


def _import_runbooks(sections: list[Section], source: str, *, actor, dry_run: bool) -> list[Outcome]:
    """Existing runbooks are read in three queries, new ones created in bulk;
    only the runbooks whose text changed are saved one by one (a new version)."""
    from django.db.models import Prefetch

    from . import services
    from .models import Runbook, RunbookStep

    found = runbooks_in(sections, source)
    existing = {
        r.source: r
        for r in Runbook.objects.filter(source__in=[p.source for p in found])
        .select_related("current_version")
        .prefetch_related("services", Prefetch("current_version__steps", RunbookStep.objects.order_by("order")))
    }
    taken = dict(
        Runbook.objects.filter(title__in=[p.title for p in found])
        .exclude(source__in=list(existing))
        .values_list("title", "source")
    )
    outcomes, new = [], []
    for parsed in found:
        runbook = existing.get(parsed.source)
        detail = f"{len(parsed.steps)} steps"
        if runbook is None and parsed.title in taken:
            origin = taken[parsed.title] or "the editor"
            outcomes.append(
                Outcome(
                    "runbook", parsed.title, "skipped", f"a runbook of that title exists (from {origin})", parsed.line
                )
            )
            continue
        try:
            services.validate(parsed.title, parsed.steps)
        except ValidationError as exc:
            outcomes.append(Outcome("runbook", parsed.title, "skipped", "; ".join(exc.messages), parsed.line))
            continue
        if runbook is not None and _same(runbook, parsed):
            outcomes.append(Outcome("runbook", runbook.title, "unchanged", detail, parsed.line))
        elif dry_run:
            outcomes.append(
                Outcome("runbook", parsed.title, "would update" if runbook else "would create", detail, parsed.line)
            )
        elif runbook is None:
            taken[parsed.title] = parsed.source  # a second section of the same title in this file is skipped
            new.append(services.NewRunbook(parsed.title, parsed.symptoms, parsed.steps, parsed.tags, parsed.source))
            outcomes.append(Outcome("runbook", parsed.title, "created", detail, parsed.line))
        else:
            _keep_actions(runbook, parsed)
            runbook, changed = services.runbook_save(
                actor=actor,
                runbook=runbook,
                title=runbook.title,
                symptoms=parsed.symptoms,
                steps=parsed.steps,
                services=runbook.services.all(),
                tags=runbook.tags,
                change_note=f"imported from {source}",
                source=parsed.source,
                check_permission=False,
            )
            outcomes.append(
                Outcome("runbook", runbook.title, "updated" if changed else "unchanged", detail, parsed.line)
            )
    services.runbooks_create_bulk(actor=actor, new=new, change_note=f"imported from {source}")
    return outcomes


def import_document(data: bytes, name: str, *, actor, dry_run: bool = False) -> list[Outcome]:
    """Everything one document holds: runbooks, then what other apps extract.
    Never raises for bad input: an unreadable file is one 'refused' outcome."""
    try:
        sections = read_document(data, name)
    except UnreadableDocument as exc:
        return [Outcome("file", name, "refused", str(exc))]
    outcomes = import_runbooks(sections, name, actor=actor, dry_run=dry_run)
    for extractor in _extractors.values():
        outcomes.extend(extractor(sections, name, actor, dry_run))
    if not outcomes:
        outcomes.append(Outcome("file", name, "skipped", "no numbered steps, command blocks or [ ] lists found"))
    return outcomes
