"""The one Markdown reader behind every importer (runbooks, checklist templates).

It turns bytes into text (any common encoding, or a one-line refusal) and
text into sections: each heading with the blocks (paragraphs, lists, fenced
code, tables) written under it, built from markdown-it-py's token stream, so
that the importers never guess Markdown's rules with regular expressions.
Broken Markdown (an unclosed fence, an empty section) reads as markdown-it
reads it — never an exception.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.token import Token


class UnreadableDocument(ValueError):
    """A document that is not text in an encoding we can tell; the message is one line."""


# --- bytes → text -----------------------------------------------------------------

_BOMS = [
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
]
# Control characters that never appear in a text document (tab, LF, FF, CR do).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def decode(data: bytes, name: str = "document") -> tuple[str, str]:
    """(text with \\n line ends, encoding used), or UnreadableDocument.

    A byte-order mark decides; then UTF-8; then Windows-1252; then
    charset-normalizer's best guess; then Latin-1. Text full of control
    characters (a binary file) is refused.
    """
    encoding = next((enc for bom, enc in _BOMS if data.startswith(bom)), None)
    if encoding is None:
        if b"\x00" in data[:8192]:
            raise UnreadableDocument(f"{name}: looks like a binary file (NUL bytes), not Markdown text")
        try:
            data.decode("utf-8")
            encoding = "utf-8"
        except UnicodeDecodeError:
            encoding = _guess(data)
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise UnreadableDocument(f"{name}: cannot be read as {encoding} ({exc.reason})") from None
    if len(_CONTROL.findall(text[:65536])) > max(8, len(text[:65536]) // 200):
        raise UnreadableDocument(f"{name}: looks like a binary file, not Markdown text")
    return text.replace("\r\n", "\n").replace("\r", "\n"), encoding


def _guess(data: bytes) -> str:
    """Operations guides that are not UTF-8 are nearly always Windows-1252
    (Latin-1 plus curly quotes and dashes): try it first, strictly; statistical
    detection guesses wrong on short files, so it only comes second."""
    try:
        data.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data[:200_000]).best()
    if best is not None:
        return best.encoding
    return "latin-1"  # decodes any byte; the control-character test still refuses binaries


# --- text → sections -----------------------------------------------------------------


@dataclass
class ListItem:
    text: str  # the item's first paragraph, raw Markdown (inline code kept)
    line: int  # 1-based
    blocks: list[Block] = field(default_factory=list)  # what follows inside the item
    source: str = ""


@dataclass
class Block:
    kind: str  # "paragraph", "list", "fence", "table", "code", "quote", "html", "rule"
    line: int  # 1-based line where it starts
    text: str = ""  # paragraph inline text, or fence/code content
    info: str = ""  # a fence's language
    ordered: bool = False
    items: list[ListItem] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)  # a table's rows, header first
    source: str = ""  # the block's own Markdown source

    @property
    def language(self) -> str:
        return (self.info.split() or [""])[0].lower()


@dataclass
class Section:
    title: str  # the heading's raw text ("" for what precedes the first heading)
    level: int  # 1–6, 0 for the preamble
    line: int
    blocks: list[Block] = field(default_factory=list)
    path: tuple[str, ...] = ()  # titles of the enclosing sections, outermost first


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # The importers read inline text raw (token.content): parsing emphasis and
    # links inside every paragraph would double the time for nothing.
    return MarkdownIt("commonmark", {"html": False}).enable("table").disable(["inline", "text_join"])


def _line(token: Token, offset: int) -> int:
    return (token.map[0] if token.map else 0) + 1 + offset


def _source(lines: list[str], token: Token) -> str:
    if not token.map:
        return ""
    return "\n".join(lines[token.map[0] : token.map[1]]).strip("\n")


class _Walker:
    def __init__(self, tokens: list[Token], lines: list[str], offset: int):
        self.tokens, self.lines, self.offset, self.pos = tokens, lines, offset, 0

    def blocks_until(self, close_type: str | None) -> list[Block]:
        """Blocks up to the closing token (exclusive); headings stop a top-level walk."""
        blocks: list[Block] = []
        while self.pos < len(self.tokens):
            token = self.tokens[self.pos]
            if close_type is not None and token.type == close_type:
                self.pos += 1
                return blocks
            if close_type is None and token.type == "heading_open":
                return blocks
            block = self.block()
            if block is not None:
                blocks.append(block)
        return blocks

    def _skip_to(self, close_type: str) -> None:
        depth = 0
        open_type = close_type.replace("_close", "_open")
        while self.pos < len(self.tokens):
            token = self.tokens[self.pos]
            self.pos += 1
            if token.type == open_type:
                depth += 1
            elif token.type == close_type:
                if depth == 0:
                    return
                depth -= 1

    def block(self) -> Block | None:
        token = self.tokens[self.pos]
        line = _line(token, self.offset)
        kind = token.type
        if kind == "paragraph_open":
            inline = self.tokens[self.pos + 1]
            self.pos += 3
            return Block("paragraph", line, text=inline.content, source=_source(self.lines, token))
        if kind in ("fence", "code_block"):
            self.pos += 1
            return Block(
                "fence" if kind == "fence" else "code",
                line,
                text=token.content,
                info=token.info.strip(),
                source=_source(self.lines, token),
            )
        if kind in ("bullet_list_open", "ordered_list_open"):
            self.pos += 1
            close = kind.replace("_open", "_close")
            items = []
            while self.pos < len(self.tokens) and self.tokens[self.pos].type != close:
                item_token = self.tokens[self.pos]
                self.pos += 1  # list_item_open
                inner = self.blocks_until("list_item_close")
                first = inner[0].text if inner and inner[0].kind == "paragraph" else ""
                rest = inner[1:] if inner and inner[0].kind == "paragraph" else inner
                items.append(ListItem(first, _line(item_token, self.offset), rest, _source(self.lines, item_token)))
            self.pos += 1
            return Block(
                "list", line, ordered=kind.startswith("ordered"), items=items, source=_source(self.lines, token)
            )
        if kind == "table_open":
            rows, row = [], None
            self.pos += 1
            while self.pos < len(self.tokens) and self.tokens[self.pos].type != "table_close":
                current = self.tokens[self.pos]
                if current.type == "tr_open":
                    row = []
                elif current.type == "tr_close" and row is not None:
                    rows.append(row)
                elif current.type == "inline" and row is not None:
                    row.append(current.content.strip())
                self.pos += 1
            self.pos += 1
            return Block("table", line, rows=rows, source=_source(self.lines, token))
        if kind == "blockquote_open":
            self.pos += 1
            inner = self.blocks_until("blockquote_close")
            return Block(
                "quote", line, text="\n\n".join(b.text for b in inner if b.text), source=_source(self.lines, token)
            )
        if kind == "hr":
            self.pos += 1
            return Block("rule", line)
        if kind == "html_block":
            self.pos += 1
            return Block("html", line, text=token.content)
        # Anything else (a stray closing token): step over it.
        self.pos += 1
        return None


def read_sections(text: str, *, line_offset: int = 0) -> list[Section]:
    """The document as a flat list of sections in document order; the first
    one (level 0, no title) holds what comes before the first heading."""
    lines = text.split("\n")
    tokens = _parser().parse(text)
    walker = _Walker(tokens, lines, line_offset)
    sections = [Section("", 0, line_offset + 1)]
    stack: list[Section] = []
    sections[0].blocks = walker.blocks_until(None)
    while walker.pos < len(tokens):
        token = tokens[walker.pos]  # heading_open
        level = int(token.tag[1:]) if token.tag[1:].isdigit() else 1
        title = tokens[walker.pos + 1].content.strip()
        walker.pos += 3
        while stack and stack[-1].level >= level:
            stack.pop()
        section = Section(title, level, _line(token, line_offset), path=tuple(s.title for s in stack))
        section.blocks = walker.blocks_until(None)
        sections.append(section)
        stack.append(section)
    return sections


def fence_sections(block: Block) -> list[Section]:
    """A fenced block's content read as Markdown (templates kept in ```markdown
    blocks; shell blocks whose `# comments` read as headings)."""
    return read_sections(block.text, line_offset=block.line)


# Code marks and strong emphasis; single underscores stay (metric_names_like_this).
_INLINE_MARKUP = re.compile(r"`|\*\*|__|(?<!\w)\*(?=\w)|(?<=\w)\*(?!\w)")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


def plain(text: str) -> str:
    """Inline Markdown as plain text: links keep their label, emphasis and code marks go."""
    return _INLINE_MARKUP.sub("", _LINK.sub(r"\1", text)).strip()
