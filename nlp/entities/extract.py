"""Typed entities (hosts, IPs, error codes, versions, ...) from support mail and logs.

Why one big regex instead of a spaCy EntityRuler: token-level REGEX patterns in a
ruler cost a full pattern walk per token and were several times slower on support mail
than a single compiled alternation over the raw text. So every label is one named
alternative of ONE compiled pattern (the table is `rules.py`); where a label needs
context ("HTTP 503", "host db-main-2") the entity is the inner `v` group only, so
`text[start:end] == entity.text` always holds. Matches are checked where a regex
cannot say it cleanly (`validate.py`), a few neighbours of found spans are added
(`resolve.py`), and PRODUCT/SERVICE names come from the operator's phrase list through a
spaCy `PhraseMatcher` on a `spacy.blank("en")` tokenizer (case-insensitive, whole
tokens). This module only assembles those parts and keeps the public names in one place.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from nlp.entities.resolve import dedupe, neighbour_spans, normalise, resolve
from nlp.entities.rules import DEFAULT_ACCOUNT_ID_RULES, GUARD_WORDS, LABELS, RULES
from nlp.entities.validate import CHECKED, valid
from nlp.types import Entity

RULES_VERSION = "ent-3"

__all__ = [
    "LABELS",
    "RULES_VERSION",
    "EntityExtractor",
    "EntitySettings",
    "EntitySettingsError",
    "dedupe",
    "extract_entities",
    "get_extractor",
    "normalise",
]


class EntitySettingsError(ValueError):
    """An operator-supplied pattern or phrase that cannot be used."""


@dataclass(frozen=True)
class EntitySettings:
    """Operator knobs. `products` entries are "phrase" (PRODUCT) or "SERVICE:phrase".

    `account_id_patterns` are extra regexes tried before the shipped account id forms
    (acct-4821, org-77123, "Account ID 4821-9932", AWS ids, ...); set
    `default_account_ids=False` to use only your own.
    """

    products: tuple[str, ...] = ()
    account_id_patterns: tuple[str, ...] = ()
    default_account_ids: bool = True


def _by_first_letter(words: str) -> str:
    """`a(?:ws|ccount)|b(?:...)`: one branch per letter, as `re` tries alternatives in turn
    and this check runs at every word of the text."""
    groups: dict[str, list[str]] = {}
    for word in words.split("|"):
        key = word[0] if word[0].isalpha() else ""
        groups.setdefault(key, []).append(word[1:] if key else word)
    return "|".join(
        f"{key}(?:{'|'.join(rest)})" if key else "|".join(rest) for key, rest in groups.items()
    )


_GUARD = rf"(?=[A-Z0-9:]|[a-z][\w-]{{0,63}}(?:\d|[@/.:=_-]\w)|iOS|{_by_first_letter(GUARD_WORDS)})"


def _compile(rules: Iterable[tuple[str, str]]) -> tuple[re.Pattern[str], dict[str, str]]:
    parts: list[str] = []
    labels: dict[str, str] = {}
    for i, (label, pattern) in enumerate(rules):
        name = f"r{i}"
        labels[name] = label
        parts.append(f"(?P<{name}>{pattern.replace('(?P<v>', f'(?P<{name}v>')})")
    # Entities start at a word start, and a plain lowercase word can only start one if
    # it is a context word: checking that first skips most positions of prose cheaply.
    return re.compile(r"(?<!\w)" + _GUARD + "(?:" + "|".join(parts) + ")"), labels


_NAMED_GROUP = re.compile(r"\(\?P<[A-Za-z_]\w*>")


def _account_rules(patterns: tuple[str, ...]) -> list[tuple[str, str]]:
    rules: list[tuple[str, str]] = []
    for pattern in patterns:
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise EntitySettingsError(
                f"account id pattern {pattern!r} is not a regex: {exc}"
            ) from exc
        if compiled.match(""):
            raise EntitySettingsError(f"account id pattern {pattern!r} matches empty text")
        # Operator patterns join the shared alternation; their own names would collide.
        rules.append(("ACCOUNT_ID", _NAMED_GROUP.sub("(?:", pattern)))
    return rules


def _phrase_entries(products: tuple[str, ...]) -> list[tuple[str, str]]:
    entries: list[tuple[str, str]] = []
    for item in products:
        label, sep, phrase = item.partition(":")
        if sep and label.strip().upper() in ("PRODUCT", "SERVICE"):
            entries.append((label.strip().upper(), phrase.strip()))
        else:
            entries.append(("PRODUCT", item.strip()))
    bad = [item for (_, phrase), item in zip(entries, products, strict=True) if not phrase]
    if bad:
        raise EntitySettingsError(f"empty product/service phrase in {bad!r}")
    return entries


class EntityExtractor:
    """Compiled rules for one `EntitySettings`; build once, call many times."""

    def __init__(self, settings: EntitySettings) -> None:
        account = _account_rules(settings.account_id_patterns)
        shipped = RULES
        if not settings.default_account_ids:
            shipped = tuple(r for r in RULES if r not in DEFAULT_ACCOUNT_ID_RULES)
        # Operator account patterns go first: they are the most specific knowledge.
        self._regex, self._labels = _compile([*account, *shipped])
        self._inner = {
            name: name + "v" for name in self._labels if name + "v" in self._regex.groupindex
        }
        self._phrases = _phrase_entries(settings.products)
        self._nlp: Any = None
        self._matcher: Any = None
        if self._phrases:
            self._build_matcher()

    def _build_matcher(self) -> None:
        import spacy
        from spacy.matcher import PhraseMatcher

        self._nlp = spacy.blank("en")
        self._matcher = PhraseMatcher(self._nlp.vocab, attr="LOWER")
        for label, phrase in self._phrases:
            self._matcher.add(label, [self._nlp.make_doc(phrase)])

    def extract(self, text: str, source: str = "body") -> list[Entity]:
        spans = list(self._regex_spans(text))
        extra = neighbour_spans(text, spans)
        if self._matcher is not None and text:
            extra.extend(self._phrase_spans(text))
        if extra:
            # Regex matches never overlap each other; only the additions can overlap them.
            spans = resolve([*spans, *extra])
        return [Entity(label, text[s:e], s, e, source) for s, e, label in spans]

    def _regex_spans(self, text: str) -> Iterable[tuple[int, int, str]]:
        for match in self._regex.finditer(text):
            name = match.lastgroup
            if name is None:
                continue
            label = self._labels[name]
            inner = self._inner.get(name)
            start, end = match.span(inner) if inner else match.span(name)
            if label in CHECKED and not valid(label, text[start:end]):
                continue
            yield start, end, label.rstrip("~")

    def _phrase_spans(self, text: str) -> Iterable[tuple[int, int, str]]:
        doc = self._nlp.make_doc(text)
        for match_id, start, end in self._matcher(doc):
            span = doc[start:end]
            yield span.start_char, span.end_char, self._nlp.vocab.strings[match_id]


@lru_cache(maxsize=16)
def get_extractor(settings: EntitySettings) -> EntityExtractor:
    return EntityExtractor(settings)


_DEFAULT = EntitySettings()


def extract_entities(
    text: str, *, source: str = "body", settings: EntitySettings | None = None
) -> list[Entity]:
    """All entities in `text`, in order; offsets index into `text` itself."""
    return get_extractor(settings or _DEFAULT).extract(text, source)
