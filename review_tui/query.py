"""The tiny filter and pattern language typed into the queue's `f` and `T` prompts.

Reps live on the keyboard, so a filter is one line (`state:stale intent:billing
conf:0.5-0.9 mailbox:support`) rather than a form, and a tag pattern is `field:value`
(`intent:outage_report`, `domain:kanoo.ng`, `entity:db-prod-01`, `signature:sig-x`).
Terms combine: space-separated terms must all match, `|` between terms gives
alternatives and a leading `-` negates (`signature:a|signature:b -intent:billing`).
A value runs until the next ` field:` or `|field:`, so it may hold spaces (a log
signature does). Parsing is pure and raises ValueError with a message the prompt
shows as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from storage.review import QUEUE_STATES, QueueFilter
from storage.review.patterns import PatternTerm, TagPattern

_PATTERN_ALIASES = {
    "intent": "intent",
    "signature": "signature",
    "sig": "signature",
    "bucket": "signature",
    "entity": "entity",
    "domain": "sender_domain",
    "sender_domain": "sender_domain",
}
_STATES = (*QUEUE_STATES,)


# Suppressed mail (auto-replies, bounces, loops) has no draft, so no queue row: the
# filter `state:suppressed` on its own opens the problems view on it, with the reasons.
SUPPRESSED = "suppressed"


def wants_suppressed(text: str) -> bool:
    return text.split() == [f"state:{SUPPRESSED}"]


def parse_filter(text: str, base: QueueFilter) -> QueueFilter:
    """Apply `key:value` terms to `base`; an empty text clears to the default states."""
    terms = text.split()
    if not terms:
        return replace(
            base,
            states=QueueFilter().states,
            intents=(),
            min_confidence=None,
            max_confidence=None,
            mailbox=None,
        )
    flt = replace(base, intents=(), min_confidence=None, max_confidence=None, mailbox=None)
    for term in terms:
        key, sep, value = term.partition(":")
        if not sep or not value:
            raise ValueError(f"{term!r}: write key:value (state, intent, conf, mailbox)")
        flt = _apply(flt, key.lower(), value)
    return flt


def _apply(flt: QueueFilter, key: str, value: str) -> QueueFilter:
    if key == "state":
        states = tuple(v for v in value.split(",") if v)
        bad = [s for s in states if s not in _STATES]
        if "shunted" in bad:
            raise ValueError("shunted mail has no draft yet: press s to see shunted and failed")
        if SUPPRESSED in bad:
            raise ValueError(
                "suppressed mail has no draft: write state:suppressed alone, or press s"
            )
        if bad:
            raise ValueError(f"unknown state {bad[0]!r} (choose from {', '.join(_STATES)})")
        return replace(flt, states=states)
    if key == "intent":
        return replace(flt, intents=tuple(v for v in value.split(",") if v))
    if key in ("conf", "confidence"):
        low, high = _range(value)
        return replace(flt, min_confidence=low, max_confidence=high)
    if key == "mailbox":
        return replace(flt, mailbox=value)
    raise ValueError(f"unknown filter {key!r} (use state, intent, conf, mailbox)")


def _range(value: str) -> tuple[float | None, float | None]:
    low_s, sep, high_s = value.partition("-")
    try:
        low = float(low_s) if low_s else None
        high = float(high_s) if sep and high_s else (None if sep else low)
    except ValueError:
        raise ValueError(f"conf:{value}: write a range like 0.5-0.9, 0.8- or -0.4") from None
    for bound in (low, high):
        if bound is not None and not 0.0 <= bound <= 1.0:
            raise ValueError(f"conf:{value}: confidence is between 0 and 1")
    if low is not None and high is not None and low > high:
        raise ValueError(f"conf:{value}: the lower bound is above the upper bound")
    return low, high


def describe_filter(flt: QueueFilter) -> str:
    """The filter as the same one-line language, for the status line and the prompt."""
    parts = [f"state:{','.join(flt.states)}"] if flt.states else []
    if flt.intents:
        parts.append(f"intent:{','.join(flt.intents)}")
    if flt.min_confidence is not None or flt.max_confidence is not None:
        low = "" if flt.min_confidence is None else f"{flt.min_confidence:g}"
        high = "" if flt.max_confidence is None else f"{flt.max_confidence:g}"
        parts.append(f"conf:{low}-{high}")
    if flt.mailbox:
        parts.append(f"mailbox:{flt.mailbox}")
    return " ".join(parts)


def parse_pattern(text: str) -> tuple[str, str]:
    """`field:value` → (storage field name, value)."""
    key, sep, value = text.strip().partition(":")
    field = _PATTERN_ALIASES.get(key.strip().lower())
    if not sep or field is None:
        raise ValueError("write field:value with field one of intent, signature, entity, domain")
    if not value.strip():
        raise ValueError(f"{key}: needs a value")
    return field, value.strip()


_FIELDS = "|".join(sorted(_PATTERN_ALIASES, key=len, reverse=True))
# A term starts the text, or follows a space or `|`, and (after the first) has its value
# right after the colon: "resolve domain: x" inside a signature stays one value.
_TERM = re.compile(rf"(^|\s*\|\s*|\s+)(-?)({_FIELDS}):(?=\S|$)", re.IGNORECASE)
_FIRST = re.compile(rf"(-?)({_FIELDS}):", re.IGNORECASE)


def parse_tag_pattern(text: str) -> TagPattern:
    """`entity:lb-1 -intent:billing`, `signature:a|signature:b` → groups of terms."""
    text = text.strip()
    first = _FIRST.match(text)
    if first is None:
        parse_pattern(text)  # raises the message that says how to write a term
        raise ValueError("write field:value")
    starts = [(0, first.end(), "", first.group(1), first.group(2))]
    for m in _TERM.finditer(text, first.end()):
        starts.append((m.start(), m.end(), m.group(1), m.group(2), m.group(3)))
    groups: list[list[PatternTerm]] = []
    for i, (_start, end, sep, neg, key) in enumerate(starts):
        value = text[end : starts[i + 1][0] if i + 1 < len(starts) else len(text)].strip()
        if not value or value.endswith("|"):
            raise ValueError(f"{key}: needs a value" + (" after |" if value else ""))
        term = PatternTerm(_PATTERN_ALIASES[key.lower()], value, negated=neg == "-")
        if "|" in sep:
            groups[-1].append(term)
        else:
            groups.append([term])
    return tuple(tuple(g) for g in groups)


def describe_pattern(pattern: TagPattern) -> str:
    fields = {"sender_domain": "domain"}
    return " ".join(
        "|".join(f"{'-' if t.negated else ''}{fields.get(t.field, t.field)}:{t.value}" for t in g)
        for g in pattern
    )


MAX_ENTITY_CHOICES = 8


def pattern_choices(
    *,
    intent: str | None,
    signature: str | None,
    sender: str,
    entities: Iterable[Mapping[str, Any]] = (),
) -> list[tuple[str, str]]:
    """A row's values as tag patterns to pick from: (pattern, what kind of value it is).

    The signature is offered whole: the queue's bucket column cuts it, so it cannot be
    read off the screen and typed. Entities are the draft's extracted values (a host, an
    error code...), at most `MAX_ENTITY_CHOICES` of them, each once.
    """
    found: list[tuple[str, str]] = []
    if intent:
        found.append((f"intent:{intent}", "intent"))
    if signature and signature.strip():
        found.append((f"signature:{signature.strip()}", "failure signature"))
    domain = sender.rpartition("@")[2].strip().lower() if "@" in sender else ""
    if domain:
        found.append((f"domain:{domain}", "sender domain"))
    seen: set[str] = set()
    for entity in entities:
        text = str(entity.get("text", "")).strip()
        if not text or text.casefold() in seen or len(seen) >= MAX_ENTITY_CHOICES:
            continue
        seen.add(text.casefold())
        kind = str(entity.get("label", "")).lower().replace("_", " ")
        found.append((f"entity:{text}", kind or "entity"))
    return found
