"""Extract checklists from the Markdown operations guides teams already wrote.

Recognised, inside or outside fenced code blocks:

- checkbox lines: `[ ] item`, `- [ ] item`, `* [x] item`, `1. [ ] item`;
- tables whose header's first column is “Item” and that have a “Check”
  column (`| Item | Check |`): one item per row; a Check cell other than a
  plain tick mark becomes the item's expected evidence.

Grouping: a fenced block that holds checkboxes is one checklist — its first
heading (or leading `# comment` in a shell block) is the title and later
headings are sections; the paragraph just before a section's items becomes
their help text. Outside fences, consecutive items under one heading are one
checklist titled by that heading. Items that are only a placeholder
(`[Immediate fix]`) are skipped, and so are inline status pickers
(`**Status**: [ ] Pending | [ ] Done`) since they do not start a line.
An item ending in “(optional)” or “if needed” is optional.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

CHECKBOX = re.compile(r"^\s*(?:[-*+]\s+|\d+[.)]\s+)?\[[ xX]\]\s+(?P<text>\S.*?)\s*$")
HEADING = re.compile(r"^\s{0,3}(?P<hashes>#{1,6})\s+(?P<text>.+?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)")
TABLE_ROW = re.compile(r"^\s*\|(?P<cells>.*)\|\s*$")
TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
PLACEHOLDER = re.compile(r"^\[[^\]]*\]$")
OPTIONAL = re.compile(r"\s*\((?:optional)\)\s*$|\bif needed\s*$", re.IGNORECASE)
TICK_MARKS = {"", "✅", "✔", "✔️", "☑", "x", "X", "[x]", "[ ]", "yes"}
MARKDOWN_LANGS = {"", "markdown", "md"}


@dataclass
class ParsedItem:
    text: str
    section: str = ""
    help: str = ""
    required: bool = True
    expected_evidence: str = ""


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


def _item(text: str, section: str, help_text: str) -> ParsedItem | None:
    text = text.strip()
    if not text or PLACEHOLDER.match(text):
        return None
    required = not OPTIONAL.search(text)
    text = re.sub(r"\s*\((?:optional)\)\s*$", "", text, flags=re.IGNORECASE)
    return ParsedItem(text=text[:300], section=section, help=help_text, required=required)


def _cells(line: str) -> list[str]:
    match = TABLE_ROW.match(line)
    return [cell.strip() for cell in match.group("cells").split("|")] if match else []


class _Parser:
    def __init__(self, source: str):
        self.source = source
        self.checklists: list[ParsedChecklist] = []
        self.current: ParsedChecklist | None = None
        self.heading = ""  # nearest heading outside fences
        self.heading_line = 0
        self.paragraph: list[str] = []
        # Fence state
        self.in_fence = False
        self.fence_marker = ""
        self.fence_markdown = False
        self.fence_title = ""
        self.fence_section = ""
        self.fence_start = 0
        self.fence_list: ParsedChecklist | None = None

    def _emit(self, checklist: ParsedChecklist | None) -> None:
        if checklist is not None and checklist.items:
            self.checklists.append(checklist)

    def _close_outside(self) -> None:
        self._emit(self.current)
        self.current = None

    def _add_outside(self, item: ParsedItem, lineno: int) -> None:
        if self.current is None:
            self.current = ParsedChecklist(clean_title(self.heading), source=self.source, line=lineno)
        self.current.items.append(item)

    def feed(self, lines: list[str]) -> list[ParsedChecklist]:
        index = 0
        while index < len(lines):
            line, lineno = lines[index], index + 1
            fence = FENCE.match(line)
            if self.in_fence:
                if fence and fence.group("fence").startswith(self.fence_marker[0]) and not fence.group("lang"):
                    self._end_fence()
                else:
                    self._fence_line(line, lineno)
                index += 1
                continue
            if fence:
                self._start_fence(fence, lineno)
                index += 1
                continue
            heading = HEADING.match(line)
            if heading:
                self._close_outside()
                self.heading, self.heading_line = heading.group("text"), lineno
                self.paragraph = []
            elif (box := CHECKBOX.match(line)) is not None:
                item = _item(box.group("text"), "", "")
                if item:
                    self._add_outside(item, lineno)
            elif TABLE_ROW.match(line) and index + 1 < len(lines) and TABLE_RULE.match(lines[index + 1]):
                index = self._table(lines, index)
                continue
            elif line.strip():
                if self.current is not None and not line.startswith((" ", "\t")):
                    self._close_outside()
                self.paragraph.append(line.strip())
            else:
                self.paragraph = []
            index += 1
        if self.in_fence:
            self._end_fence()
        self._close_outside()
        return self.checklists

    def _table(self, lines: list[str], index: int) -> int:
        header = [cell.lower() for cell in _cells(lines[index])]
        index += 2
        rows = []
        while index < len(lines) and TABLE_ROW.match(lines[index]):
            rows.append(_cells(lines[index]))
            index += 1
        if header and header[0] == "item" and "check" in header:
            self._close_outside()
            check_col = header.index("check")
            checklist = ParsedChecklist(clean_title(self.heading), source=self.source, line=self.heading_line)
            for row in rows:
                item = _item(row[0] if row else "", "", "")
                if item is None:
                    continue
                check = row[check_col] if check_col < len(row) else ""
                if check not in TICK_MARKS:
                    item.expected_evidence = check[:300]
                checklist.items.append(item)
            self._emit(checklist)
        return index

    # --- fenced blocks -------------------------------------------------------------

    def _start_fence(self, fence: re.Match, lineno: int) -> None:
        self._close_outside()
        self.in_fence = True
        self.fence_marker = fence.group("fence")
        self.fence_markdown = fence.group("lang").lower() in MARKDOWN_LANGS
        self.fence_title = ""
        self.fence_section = ""
        self.fence_start = lineno
        self.fence_list = None
        self.paragraph = []

    def _fence_line(self, line: str, lineno: int) -> None:
        heading = HEADING.match(line)
        box = CHECKBOX.match(line)
        if heading and not box:
            # In a Markdown fence a heading is a heading; in a shell block a
            # `# comment` only names what follows it.
            text = heading.group("text")
            if not self.fence_title and not (self.fence_list and self.fence_list.items):
                self.fence_title = text
            else:
                self.fence_section = clean_title(text)
            self.paragraph = []
        elif box:
            help_text = " ".join(self.paragraph) if self.fence_section else ""
            item = _item(box.group("text"), self.fence_section, help_text)
            if item is None:
                return
            if self.fence_list is None:
                title = self.fence_title or self.heading
                self.fence_list = ParsedChecklist(clean_title(title), source=self.source, line=self.fence_start)
            self.fence_list.items.append(item)
        elif line.strip():
            if not TABLE_ROW.match(line) and not line.strip().startswith("**"):
                self.paragraph.append(line.strip())
        else:
            self.paragraph = []

    def _end_fence(self) -> None:
        self._emit(self.fence_list)
        self.in_fence = False
        self.fence_list = None
        self.paragraph = []


def parse_markdown(text: str, source: str = "") -> list[ParsedChecklist]:
    """Every checklist in a Markdown document, in document order."""
    return _Parser(source).feed(text.splitlines())


def parse_file(path: str | Path) -> list[ParsedChecklist]:
    path = Path(path)
    return parse_markdown(path.read_text(encoding="utf-8"), source=path.name)
