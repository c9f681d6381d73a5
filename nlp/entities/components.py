"""Which component each version belongs to: ("PostgreSQL", "14.7"), ("nginx", "1.25.3").

A mail that says "ingress-nginx 1.9.4 (affected by CVE-2023-44487), kubectl v1.29.1"
names two versions; checking the CVE against the wrong one gives a wrong answer with
confidence. The pairing is positional and deliberately simple: the version's own
"name/1.2.3" prefix, else the nearest word before it that names software, skipping
connectors ("from", "to", "version") and other versions in between, so "openssl from
3.0.2 to 3.0.13" pairs both numbers with openssl. A generic noun ("SDK", "client")
joins the word before it ("Python SDK"); a version after plain prose ("upgraded to
2.31.0") has no component and is left out rather than guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from nlp.entities.words import COMPONENT_SUFFIXES, NOT_COMPONENTS
from nlp.types import Entity

_PREFIX = re.compile(r"^(?:version|ver\.?|release|v)\s{0,3}:?\s{0,3}", re.IGNORECASE)
_TOKEN = re.compile(r"[^\s(),;:\"'\[\]]+")
_NAME = re.compile(r"^[A-Za-z][\w.+-]{0,62}$")
_CONNECTORS = frozenset(
    {"from", "to", "->", "→", "=", "==", "@", "version", "ver", "ver.", "v", "release", "and"}
)
_WINDOW = 6  # tokens looked at before a version


def versions_with_components(text: str, entities: Iterable[Entity]) -> list[tuple[str, str]]:
    """(component, version) for each VERSION in `entities` whose component is named.

    Versions come without a "v"/"version" prefix ("kubectl v1.29.1" → ("kubectl",
    "1.29.1")); components as written. Entities must index into `text`.
    """
    versions = [e for e in entities if e.label == "VERSION" and text[e.start : e.end] == e.text]
    spans = [(e.start, e.end) for e in versions]
    pairs: list[tuple[str, str]] = []
    for entity in versions:
        name, slash, number = entity.text.rpartition("/")
        if slash and _NAME.match(name):
            pairs.append((name, _PREFIX.sub("", number)))
            continue
        component = _component_before(text, entity.start, spans)
        if component:
            pairs.append((component, _PREFIX.sub("", entity.text)))
    return pairs


def _component_before(text: str, start: int, versions: list[tuple[int, int]]) -> str:
    window = text[max(0, start - 160) : start]
    offset = start - len(window)
    tokens = [
        m
        for m in _TOKEN.finditer(window)
        if not any(s <= offset + m.start() < e for s, e in versions)
    ][-_WINDOW:]
    words = [m.group(0).rstrip(".,") for m in reversed(tokens)]
    for i, word in enumerate(words):
        lowered = word.lower()
        if lowered in _CONNECTORS or lowered.replace(".", "").isdigit():
            continue
        if lowered in COMPONENT_SUFFIXES and i + 1 < len(words):
            before = words[i + 1]
            if _is_name(before):
                return f"{before} {word}"
            return ""
        return word if _is_name(word) else ""
    return ""


def _is_name(word: str) -> bool:
    return bool(_NAME.match(word)) and word.lower() not in NOT_COMPONENTS
