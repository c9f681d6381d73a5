"""Customer text, made safe to put on a terminal.

Customer mail is hostile input as far as the screen is concerned: it may hold Rich or
Textual markup (`[bold]`, `[@click=app.quit]`) and terminal escape sequences. Nothing
from it may ever be interpreted. So every customer string becomes a `rich.text.Text`
(never parsed as markup) after control characters are swapped for visible symbols.

Bidirectional controls (U+202A–U+202E, U+2066–U+2069, U+200E/U+200F, U+061C) are
shown as escapes like `<U+202E>`: left in, they reorder what the rep reads, so a
filename or an address could display as something it is not. The control-character
swap keeps the length of the string, so entity offsets computed on the original body
still point at the same characters; the bidi escapes are longer, so `highlighted`
places entities first and escapes each piece as it is appended.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rich.text import Text

_KEEP = {"\n", "\t"}
BIDI_CONTROLS = frozenset(
    chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)
)


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


def _pictures(text: str) -> str:
    """Control characters (but newline and tab) as visible symbols; same length."""
    if not any(_is_control(ch) for ch in text):
        return text
    return "".join(_picture(ch) if _is_control(ch) else ch for ch in text)


def escape_bidi(text: str) -> str:
    """Every bidirectional control as a visible escape such as `<U+202E>`."""
    if not any(ch in BIDI_CONTROLS for ch in text):
        return text
    return "".join(f"<U+{ord(ch):04X}>" if ch in BIDI_CONTROLS else ch for ch in text)


def clean(value: object) -> str:
    """`value` as a string with every control character (but newline and tab) made visible."""
    return escape_bidi(_pictures("" if value is None else str(value)))


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
    text = _pictures(body)
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
        out.append(escape_bidi(text[pos:start]))
        out.append(escape_bidi(text[start:end]), style=ENTITY_STYLE)
        out.append(f"‹{clean(label)}›", style=LABEL_STYLE)
        pos = end
    out.append(escape_bidi(text[pos:]))
    return out


def _locate(entity: Mapping[str, Any], text: str) -> tuple[int, int, str] | None:
    """Where the entity sits in `text`: its offsets if they hold its text, else its first
    occurrence (offsets may refer to the quote-stripped reply rather than the whole body)."""
    label = str(entity.get("label", ""))
    wanted = _pictures(str(entity.get("text", "") or ""))
    try:
        start, end = int(entity["start"]), int(entity["end"])
    except (KeyError, TypeError, ValueError):
        start = end = -1
    if 0 <= start < end <= len(text) and (not wanted or text[start:end] == wanted):
        return start, end, label
    found = text.find(wanted) if wanted else -1
    return (found, found + len(wanted), label) if found >= 0 else None
