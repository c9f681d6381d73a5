"""Customer text, made safe to put on a terminal.

Customer mail is hostile input as far as the screen is concerned: it may hold Rich or
Textual markup (`[bold]`, `[@click=app.quit]`) and terminal escape sequences. Nothing
from it may ever be interpreted. So every customer string becomes a `rich.text.Text`
(never parsed as markup) after control characters are swapped for visible symbols.
The swap keeps the length of the string, so entity offsets computed on the original
body still point at the same characters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rich.text import Text

_KEEP = {"\n", "\t"}


def _picture(ch: str) -> str:
    code = ord(ch)
    if code < 0x20:
        return chr(0x2400 + code)  # Unicode "control pictures": ␛ for ESC, ␍ for CR
    if code == 0x7F:
        return "\u2421"
    return "\ufffd"


def _is_control(ch: str) -> bool:
    code = ord(ch)
    return (code < 0x20 and ch not in _KEEP) or 0x7F <= code <= 0x9F


def clean(value: object) -> str:
    """`value` as a string with every control character (but newline and tab) made visible."""
    text = "" if value is None else str(value)
    if not any(_is_control(ch) for ch in text):
        return text
    return "".join(_picture(ch) if _is_control(ch) else ch for ch in text)


def one_line(value: object, limit: int = 200) -> str:
    """A cleaned single line for a table cell or a heading."""
    text = clean(value).replace("\n", " ").replace("\t", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def safe(value: object, style: str = "") -> Text:
    """A Text that shows `value` literally."""
    return Text(clean(value), style=style)


def safe_line(value: object, style: str = "", limit: int = 200) -> Text:
    return Text(one_line(value, limit), style=style)


ENTITY_STYLE = "bold black on #d7af5f"
LABEL_STYLE = "dim italic"


def highlighted(body: str, entities: Iterable[Mapping[str, Any]]) -> Text:
    """The body with each entity span styled and followed by its label, e.g. ‹HOSTNAME›."""
    text = clean(body)
    spans = sorted(
        (
            span
            for e in entities
            if str(e.get("source", "body")) == "body"
            for span in [_locate(e, text)]
            if span is not None
        ),
        key=lambda s: (s[0], -s[1]),
    )
    out = Text()
    pos = 0
    for start, end, label in spans:
        if start < pos:
            continue  # overlapping span: the first (longest) one wins
        out.append(text[pos:start])
        out.append(text[start:end], style=ENTITY_STYLE)
        out.append(f"‹{clean(label)}›", style=LABEL_STYLE)
        pos = end
    out.append(text[pos:])
    return out


def _locate(entity: Mapping[str, Any], text: str) -> tuple[int, int, str] | None:
    """Where the entity sits in `text`: its offsets if they hold its text, else its first
    occurrence (offsets may refer to the quote-stripped reply rather than the whole body)."""
    label = str(entity.get("label", ""))
    wanted = clean(entity.get("text", ""))
    try:
        start, end = int(entity["start"]), int(entity["end"])
    except (KeyError, TypeError, ValueError):
        start = end = -1
    if 0 <= start < end <= len(text) and (not wanted or text[start:end] == wanted):
        return start, end, label
    found = text.find(wanted) if wanted else -1
    return (found, found + len(wanted), label) if found >= 0 else None
