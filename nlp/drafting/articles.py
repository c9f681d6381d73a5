"""Knowledge-base articles: Markdown with TOML front matter, read strictly.

Articles are plain files a support lead edits in a text editor and reviews in git, so
the format is the least surprising one: a `+++` TOML block (the stdlib's `tomllib`)
followed by Markdown. The front matter carries what ranking and drafting need: intents,
tags, entity triggers, `needs` (facts the answer depends on), answer variants per kind
of mail with translations, and log patterns with what they mean (kb/README.md). The
Markdown body is what a rep reads and what retrieval matches against.

Every mistake is an error naming the file and the problem (an unknown key, kind,
language or placeholder, a regex that does not compile), never a silently missing
article: a typo must not quietly turn every draft of an intent into needs_triage.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FRONT_MATTER = "+++"
PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")
TICKET_PLACEHOLDERS = frozenset({"customer_name", "ticket_ref"})
FACT_NAMES = (
    "hostname", "ip", "url", "email", "http_status", "error_code", "version",
    "k8s_resource", "cloud_region", "account_id", "cve", "exception", "timestamp",
    "product", "service",
)  # fmt: skip
KNOWN_PLACEHOLDERS = TICKET_PLACEHOLDERS | frozenset(FACT_NAMES)
KINDS = ("request", "failure", "howto", "security")
LANGUAGES = ("en", "es", "de", "fr", "pt")
_ALLOWED_KEYS = {
    "title", "intents", "tags", "entities", "reply", "needs", "variants", "log_patterns",
}  # fmt: skip


class KbError(ValueError):
    """An article that cannot be loaded, worded for the person who edits it."""


@dataclass(frozen=True, slots=True)
class Variant:
    """One answer for one kind of mail; `texts` maps language → text ("en" always)."""

    kind: str
    texts: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class LogPattern:
    """A log line this article can explain, and the explanation per language."""

    pattern: re.Pattern[str]
    means: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Article:
    id: str
    title: str
    intents: tuple[str, ...]
    tags: tuple[str, ...]
    entities: tuple[str, ...]
    body: str
    path: str = ""
    needs: tuple[str, ...] = ()
    variants: tuple[Variant, ...] = ()
    log_patterns: tuple[LogPattern, ...] = field(default=())

    @property
    def reply(self) -> str:
        """The first variant in English: the older single-template view."""
        return self.variants[0].texts["en"] if self.variants else ""

    def variant(self, kind: str) -> Variant | None:
        """The variant for `kind`, else the first one, else None."""
        for variant in self.variants:
            if variant.kind == kind:
                return variant
        return self.variants[0] if self.variants else None


def _str_list(meta: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = meta.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise KbError(f"{where}: '{key}' must be a list of strings")
    return tuple(value)


def _check_placeholders(text: str, where: str) -> None:
    unknown = sorted(set(PLACEHOLDER.findall(text)) - KNOWN_PLACEHOLDERS)
    if unknown:
        raise KbError(
            f"{where}: unknown placeholder(s) {', '.join('{' + n + '}' for n in unknown)} "
            f"(known: {', '.join(sorted(KNOWN_PLACEHOLDERS))})"
        )


def _translations(table: Any, english: str, where: str, *, placeholders: bool) -> dict[str, str]:
    if table is None:
        table = {}
    if not isinstance(table, dict):
        raise KbError(f"{where}: 'translations' must be a table of language = text")
    texts = {"en": english.strip("\n")}
    for lang, text in table.items():
        if lang not in LANGUAGES or lang == "en":
            raise KbError(f"{where}: unknown language '{lang}' (use {', '.join(LANGUAGES[1:])})")
        if not isinstance(text, str) or not text.strip():
            raise KbError(f"{where}: translation '{lang}' must be non-empty text")
        if placeholders:
            _check_placeholders(text, f"{where} ({lang})")
        texts[lang] = text.strip("\n")
    return texts


def _tables(
    meta: Mapping[str, Any], key: str, allowed: tuple[str, ...], where: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The items of an array of tables (`[[key]]`), each with where it is, checked for
    unknown keys."""
    raw = meta.get(key, [])
    if not isinstance(raw, list):
        raise KbError(f"{where}: '{key}' must be an array of tables ([[{key}]])")
    for n, item in enumerate(raw, 1):
        at = f"{where}: {key} {n}"
        if not isinstance(item, dict) or set(item) - set(allowed):
            raise KbError(f"{at}: allowed keys are {', '.join(allowed)}")
        yield at, item


def _variants(meta: Mapping[str, Any], where: str) -> tuple[Variant, ...]:
    raw = meta.get("variants")
    legacy = meta.get("reply")
    if raw is not None and legacy is not None:
        raise KbError(f"{where}: use either 'reply' or [[variants]], not both")
    if legacy is not None:
        if not isinstance(legacy, str):
            raise KbError(f"{where}: 'reply' must be a string")
        _check_placeholders(legacy, where)
        return (Variant("failure", {"en": legacy.strip("\n")}),) if legacy.strip() else ()
    variants = []
    for at, item in _tables(meta, "variants", ("kind", "reply", "translations"), where):
        kind = item.get("kind", "")
        if kind not in KINDS:
            raise KbError(f"{at}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
        reply = item.get("reply")
        if not isinstance(reply, str) or not reply.strip():
            raise KbError(f"{at}: 'reply' is required")
        _check_placeholders(reply, at)
        variants.append(
            Variant(kind, _translations(item.get("translations"), reply, at, placeholders=True))
        )
    return tuple(variants)


def _log_patterns(meta: Mapping[str, Any], where: str) -> tuple[LogPattern, ...]:
    patterns = []
    for at, item in _tables(meta, "log_patterns", ("match", "means", "translations"), where):
        match, means = item.get("match"), item.get("means")
        if not isinstance(match, str) or not match or not isinstance(means, str):
            raise KbError(f"{at}: 'match' (a regex) and 'means' (text) are required")
        try:
            compiled = re.compile(match, re.IGNORECASE)
        except re.error as exc:
            raise KbError(f"{at}: 'match' is not a valid regex: {exc}") from exc
        texts = _translations(item.get("translations"), means, at, placeholders=False)
        patterns.append(LogPattern(compiled, texts))
    return tuple(patterns)


def parse_article(text: str, *, article_id: str, where: str = "") -> Article:
    """Parse one article; raise KbError naming `where` and the problem."""
    where = where or article_id
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != FRONT_MATTER:
        raise KbError(f"{where}: must start with a '+++' TOML front matter block")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == FRONT_MATTER)
    except StopIteration:
        raise KbError(f"{where}: front matter has no closing '+++'") from None
    try:
        meta = tomllib.loads("\n".join(lines[1:end]))
    except tomllib.TOMLDecodeError as exc:
        raise KbError(f"{where}: invalid TOML front matter: {exc}") from exc
    unknown = sorted(set(meta) - _ALLOWED_KEYS)
    if unknown:
        raise KbError(
            f"{where}: unknown front matter key(s) {', '.join(unknown)} "
            f"(allowed: {', '.join(sorted(_ALLOWED_KEYS))})"
        )
    title = meta.get("title")
    if not isinstance(title, str) or not title.strip():
        raise KbError(f"{where}: 'title' is required")
    needs = _str_list(meta, "needs", where)
    bad_needs = sorted(set(needs) - set(FACT_NAMES))
    if bad_needs:
        raise KbError(
            f"{where}: unknown fact(s) in needs: {', '.join(bad_needs)} "
            f"(known: {', '.join(FACT_NAMES)})"
        )
    return Article(
        id=article_id,
        title=title.strip(),
        intents=_str_list(meta, "intents", where),
        tags=_str_list(meta, "tags", where),
        entities=tuple(e.upper() for e in _str_list(meta, "entities", where)),
        body="\n".join(lines[end + 1 :]).strip(),
        path=where,
        needs=needs,
        variants=_variants(meta, where),
        log_patterns=_log_patterns(meta, where),
    )


def load_articles(directory: str | Path) -> tuple[Article, ...]:
    """Every `*.md` article in `directory`, sorted by id."""
    root = Path(directory)
    if not root.is_dir():
        raise KbError(f"knowledge base directory {root} does not exist")
    articles = []
    for path in sorted(root.glob("*.md")):
        if path.name.lower() == "readme.md":
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise KbError(f"{path}: not UTF-8 text") from exc
        articles.append(parse_article(text, article_id=path.stem, where=str(path)))
    return tuple(articles)
