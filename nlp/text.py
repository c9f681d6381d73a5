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


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


_STOPWORDS: dict[str, frozenset[str]] = {
    "en": _wordset("the and is are was have with this that not for you our we it please"),
    "de": _wordset("der die das und ist nicht mit ich wir sie ein eine bitte auf für"),
    "fr": _wordset("le la les et est pas avec nous vous une des pour merci sur je"),
    "es": _wordset("el los las y es no con una por para que gracias nosotros del"),
    "nl": _wordset("de het een en is niet met wij ik voor van dat bedankt graag"),
}
_WORD = re.compile(r"[^\W\d_]+")
_STOPWORD_LANGS: dict[str, tuple[str, ...]] = {}
for _lang, _words in _STOPWORDS.items():
    for _w in _words:
        _STOPWORD_LANGS[_w] = (*_STOPWORD_LANGS.get(_w, ()), _lang)


def detect_language(text: str, *, default: str = "en") -> str:
    """A cheap stopword vote over the first words; `default` when nothing is clear."""
    votes: dict[str, int] = {}
    for word in _WORD.findall(text[:2000].lower()):
        for lang in _STOPWORD_LANGS.get(word, ()):
            votes[lang] = votes.get(lang, 0) + 1
    if not votes:
        return default
    best = max(votes, key=lambda lang: votes[lang])
    if votes[best] < 3 or votes[best] <= votes.get(default, 0):
        return default
    return best
