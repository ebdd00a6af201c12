"""Extract checklists from the Markdown operations guides teams already wrote.

Built on the shared Markdown reader (opsconsole.markdown_reader), so lists,
fences and tables are what markdown-it says they are. Recognised:

- checkbox items: list items or paragraph lines starting `[ ]` or `[x]`
  (`- [ ] item`, `* [x] item`, `1. [ ] item`, or bare `[ ] item` lines);
- tables whose header's first column is “Item” and that have a “Check”
  column (`| Item | Check |`): one item per row; a Check cell other than a
  plain tick mark becomes the item's expected evidence.

Grouping: a fenced block that holds checkboxes is one checklist, its content
read as Markdown — its first heading (or leading `# comment` in a shell
block) is the title and later headings are sections; the paragraph just
before a section's items becomes their help text. Outside fences,
consecutive items under one heading are one checklist titled by that
heading. Items that are only a placeholder (`[Immediate fix]`) are skipped,
and so are inline status pickers (`**Status**: [ ] Pending | [ ] Done`) since
they do not start a line. An item ending in “(optional)” or “if needed” is
optional.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

from opsconsole.markdown_reader import Block, Section, decode, fence_sections, read_sections

CHECKBOX = re.compile(r"^\[[ xX]\]\s+(?P<text>\S.*?)\s*$")
PLACEHOLDER = re.compile(r"^\[[^\]]*\]$")
LINK = re.compile(r"\[(?P<label>[^\]]+)\]\((?P<url>[^)\s]+)\)")
OPTIONAL = re.compile(r"\s*\((?:optional)\)\s*$|\bif needed\s*$", re.IGNORECASE)
TICK_MARKS = {"", "✅", "✔", "✔️", "☑", "x", "X", "[x]", "[ ]", "yes"}
# Fences whose content is read for checkboxes: Markdown and shell blocks
# (a shell block's `# comment` is its title).
NOT_CHECKLIST_LANGS = {"json", "yaml", "yml", "sql", "xml", "html", "toml", "ini"}


@dataclass
class ParsedItem:
    text: str
    section: str = ""
    help: str = ""
    required: bool = True
    expected_evidence: str = ""
    # A Markdown link in the item (`[Queue backlog](https://console/runbooks/12/)`):
    # the import makes it a runbook reference when it names one of ours.
    link: str = ""
    link_label: str = ""


@dataclass
class ParsedChecklist:
    title: str
    items: list[ParsedItem] = field(default_factory=list)
    source: str = ""
    line: int = 0
    description: str = ""


def clean_title(text: str) -> str:
    """“Release Deployment: v[VERSION]” → “Release Deployment”; drops markup and numbering."""
    text = re.sub(r"[*_`]", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"^\s*(?:\d+(?:\.\d+)*\.?|template:)\s+", "", text, flags=re.IGNORECASE)
    text = re.sub(r"^template:\s*", "", text, flags=re.IGNORECASE)
    return re.sub(r"[\s:\-–—v]+$", "", text.strip()).strip() or "Checklist"


def _item(text: str, section: str = "", help_text: str = "") -> ParsedItem | None:
    text = text.strip()
    if not text or PLACEHOLDER.match(text):
        return None
    required = not OPTIONAL.search(text)
    text = re.sub(r"\s*\((?:optional)\)\s*$", "", text, flags=re.IGNORECASE)
    link = LINK.search(text)
    if link:
        text = LINK.sub(lambda m: m["label"], text)
    return ParsedItem(
        text=text[:300],
        section=section,
        help=help_text,
        required=required,
        link=link["url"][:500] if link else "",
        link_label=link["label"][:200] if link else "",
    )


def _boxes(block: Block) -> list[str] | None:
    """The checkbox texts of a list or paragraph block; None when it has none."""
    if block.kind == "list":
        texts = [m.group("text") for item in block.items if (m := CHECKBOX.match(item.text.split("\n")[0].strip()))]
    elif block.kind == "paragraph":
        texts = [m.group("text") for line in block.text.split("\n") if (m := CHECKBOX.match(line.strip()))]
    else:
        return None
    return texts or None


def _table(block: Block, title: str, source: str) -> ParsedChecklist | None:
    header = [cell.lower() for cell in (block.rows[0] if block.rows else [])]
    if not header or header[0] != "item" or "check" not in header:
        return None
    check_col = header.index("check")
    checklist = ParsedChecklist(clean_title(title), source=source, line=block.line)
    for row in block.rows[1:]:
        item = _item(row[0] if row else "")
        if item is None:
            continue
        check = row[check_col] if check_col < len(row) else ""
        if check not in TICK_MARKS:
            item.expected_evidence = check[:300]
        checklist.items.append(item)
    return checklist


def _fence_checklist(block: Block, heading: str, source: str) -> ParsedChecklist | None:
    if block.language in NOT_CHECKLIST_LANGS or "[" not in block.text:
        return None
    checklist = ParsedChecklist("", source=source, line=block.line)
    title, section = "", ""
    for inner in fence_sections(block):
        if inner.title:
            # The first heading before any item names the checklist; later ones are sections.
            if not title and not checklist.items:
                title = inner.title
            else:
                section = clean_title(inner.title)
        help_text = ""
        for part in inner.blocks:
            texts = _boxes(part)
            if texts is None:
                if part.kind == "paragraph" and not part.text.startswith("**"):
                    help_text = " ".join(line.strip() for line in part.text.split("\n"))
                continue
            for text in texts:
                item = _item(text, section, help_text if section else "")
                if item:
                    checklist.items.append(item)
    checklist.title = clean_title(title or heading)
    return checklist if checklist.items else None


def _section_checklists(section: Section, source: str) -> list[ParsedChecklist]:
    found: list[ParsedChecklist] = []
    current: ParsedChecklist | None = None

    def close() -> None:
        nonlocal current
        if current is not None and current.items:
            found.append(current)
        current = None

    for block in section.blocks:
        texts = _boxes(block)
        if texts is not None:
            if current is None:
                current = ParsedChecklist(clean_title(section.title), source=source, line=block.line)
            current.items.extend(item for text in texts if (item := _item(text)))
            continue
        close()
        if block.kind == "table":
            if (table := _table(block, section.title, source)) and table.items:
                found.append(table)
        elif block.kind in ("fence", "code") and (fenced := _fence_checklist(block, section.title, source)):
            found.append(fenced)
    close()
    return found


def checklists_in(sections: list[Section], source: str = "") -> list[ParsedChecklist]:
    """Every checklist in already-read sections, in document order."""
    return [checklist for section in sections for checklist in _section_checklists(section, source)]


def parse_markdown(text: str, source: str = "") -> list[ParsedChecklist]:
    """Every checklist in a Markdown document, in document order."""
    return checklists_in(read_sections(text), source)


def parse_file(path: str | Path) -> list[ParsedChecklist]:
    """Raises opsconsole.markdown_reader.UnreadableDocument (one line) for binaries and unknown encodings."""
    path = Path(path)
    text, _encoding = decode(path.read_bytes(), path.name)
    return parse_markdown(text, source=path.name)


def import_templates(sections: list[Section], source: str, actor, dry_run: bool = False) -> list:
    """The runbooks importer's hook (registered in ChecklistsConfig.ready()):
    each checklist found becomes a template; an existing one is kept as it is."""
    from runbooks.importer import Outcome

    from . import services
    from .models import ChecklistTemplate

    outcomes = []
    for parsed in checklists_in(sections, source):
        detail = f"{len(parsed.items)} items"
        if ChecklistTemplate.objects.filter(name=parsed.title).exists():
            outcomes.append(
                Outcome(
                    "checklist", parsed.title, "unchanged", f"a template of that name exists; {detail}", parsed.line
                )
            )
        elif dry_run:
            outcomes.append(Outcome("checklist", parsed.title, "would create", detail, parsed.line))
        else:
            services.template_import(actor=actor, name=parsed.title, parsed=parsed)
            outcomes.append(Outcome("checklist", parsed.title, "created", detail, parsed.line))
    return outcomes
