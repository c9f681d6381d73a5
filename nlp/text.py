"""Make customer text safe to analyse: no NULs, no terminal escapes, bounded length.

Mail bodies and log files arrive with whatever the sender's tools produced: coloured
log output full of ANSI escape sequences, NUL bytes from binary dumps, carriage
returns, megabytes of text. Every analysis step downstream assumes plain `\\n`-lined
text of a bounded size, so this module is the one place that guarantees it. It never
raises; what it had to change is reported as notes so a rep can see it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

# Text longer than this is cut before any NLP step; the cut is reported as a note.
MAX_NLP_CHARS = 100_000

# CSI (`ESC [ ... final`), OSC (`ESC ] ... BEL|ST`) and two-byte ESC sequences.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]?")
# C0/C1 controls other than tab and newline (NUL, bell, backspace, DEL, ...).
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_NEEDS_CLEANING = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass(frozen=True, slots=True)
class CleanText:
    text: str
    notes: tuple[str, ...] = ()


def clean_text(text: str, *, max_chars: int = MAX_NLP_CHARS) -> CleanText:
    """Strip escapes and control characters, normalise newlines, cap the length."""
    notes: list[str] = []
    if len(text) > max_chars * 2:
        # Cleaning cannot grow text, so cut early to keep the regexes below bounded.
        text = text[: max_chars * 2]
    if _NEEDS_CLEANING.search(text):
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        cleaned = _CONTROLS.sub("", _ANSI.sub("", text))
        if len(cleaned) != len(text):
            notes.append("removed control characters or terminal escape sequences")
        text = cleaned
    if len(text) > max_chars:
        notes.append(f"text cut to the first {max_chars:,} characters for analysis")
        text = text[:max_chars]
    return CleanText(text=text, notes=tuple(notes))


def clean_line(line: str) -> str:
    """One log line without escapes or control characters (tabs kept)."""
    if _NEEDS_CLEANING.search(line):
        line = _CONTROLS.sub("", _ANSI.sub("", line.replace("\r", "")))
    return line


_SKIP_TAGS = frozenset({"style", "script", "head", "title", "xml"})
_BLOCK_TAGS = frozenset(
    {"p", "div", "br", "tr", "li", "ul", "ol", "table", "h1", "h2", "h3", "h4", "h5", "h6"}
    | {"pre", "section", "article", "header", "footer", "dt", "dd"}
)
_QUOTE_OPEN, _QUOTE_CLOSE = "\x01", "\x02"
_CELL_TAGS = frozenset({"td", "th"})
# Between the cells of one row: without it "<td>db-main-2</td><td>eu-west-1</td>" reads
# as one word, and an entity extractor sees a host name that does not exist.
CELL_SEPARATOR = " | "


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0
        self.cells_in_row = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self.skipping += 1
        elif tag == "blockquote":
            self.parts.append(f"\n{_QUOTE_OPEN}\n")
        elif tag == "hr":
            self.parts.append("\n" + "_" * 32 + "\n")
        elif tag in _CELL_TAGS:
            if self.cells_in_row:
                self.parts.append(CELL_SEPARATOR)
            self.cells_in_row += 1
        elif tag in _BLOCK_TAGS:
            if tag in ("tr", "table"):
                self.cells_in_row = 0
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skipping = max(0, self.skipping - 1)
        elif tag == "blockquote":
            self.parts.append(f"\n{_QUOTE_CLOSE}\n")
        elif tag in _BLOCK_TAGS:
            if tag in ("tr", "table"):
                self.cells_in_row = 0
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(" ".join(data.split()) if data.strip() else " ")


def html_to_text(html: str) -> str:
    """Readable text from an HTML body; `<blockquote>` content comes back `>`-quoted.

    Quoting blockquotes lets the plain-text reply stripper treat an HTML reply like
    any other. Broken HTML never raises: whatever the parser saw is returned.
    """
    parser = _TextExtractor()
    try:
        parser.feed(html[: MAX_NLP_CHARS * 10])
        parser.close()
    except Exception:  # html.parser is lenient; this is a last guard for odd input
        pass
    lines: list[str] = []
    depth = 0
    for raw in "".join(parser.parts).split("\n"):
        line = raw.strip()
        if line == _QUOTE_OPEN:
            depth += 1
        elif line == _QUOTE_CLOSE:
            depth = max(0, depth - 1)
        elif line or (lines and lines[-1].strip("> ")):
            lines.append("> " * depth + line if depth else line)
    return "\n".join(lines).strip()
