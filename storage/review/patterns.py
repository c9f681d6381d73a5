"""Tag patterns: terms ANDed together, alternatives ORed within a term, terms negated.

A rep tags "every ticket about lb-eu-central-1 that is not about billing" or "either
of two signatures" in one go. A pattern is an AND of groups and each group an OR of
terms, so `signature:a|signature:b -intent:billing` is ((a or b) and not billing).
The database narrows the queue to a superset of the matches (an exact condition for
the intent, signature and domain; a text search for an entity, whose exact value
lives in JSON), and every row it returns is then checked exactly here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, and_, cast, or_, true
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from storage.models import Draft, Ticket
from storage.review.types import PATTERN_FIELDS, ReviewError


@dataclass(frozen=True, slots=True)
class PatternTerm:
    field: str  # one of PATTERN_FIELDS
    value: str
    negated: bool = False


# An AND of groups; a group is an OR of terms.
TagPattern = tuple[tuple[PatternTerm, ...], ...]


def one_term(field_name: str, value: str) -> TagPattern:
    return ((PatternTerm(field_name, value),),)


def checked(pattern: Sequence[Sequence[PatternTerm]]) -> TagPattern:
    """The pattern with values trimmed; a ReviewError for an unknown field or no value."""
    groups = []
    for group in pattern:
        terms = []
        for term in group:
            if term.field not in PATTERN_FIELDS:
                raise ReviewError(
                    f"cannot tag by {term.field!r} (choose from {', '.join(PATTERN_FIELDS)})"
                )
            if not term.value.strip():
                raise ReviewError("a pattern needs a value")
            terms.append(PatternTerm(term.field, term.value.strip(), term.negated))
        if terms:
            groups.append(tuple(terms))
    if not groups:
        raise ReviewError("a pattern needs a value")
    return tuple(groups)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _domain(value: str) -> str:
    return value.lstrip("@").lower()


def _condition(term: PatternTerm) -> ColumnElement[bool]:
    """A database condition true for every row the term matches (for an entity, more)."""
    if term.field == "entity":
        if term.negated:
            return true()  # text search cannot rule a row out: checked row by row
        like = f"%{_escape_like(term.value)}%"
        return cast(col(Draft.evidence), String).ilike(like, escape="\\")
    column: Any
    if term.field == "intent":
        column, match = col(Draft.intent), col(Draft.intent) == term.value
    elif term.field == "signature":
        column, match = col(Ticket.signature), col(Ticket.signature) == term.value
    else:
        column = col(Draft.to_addr)
        match = column.ilike(f"%@{_escape_like(_domain(term.value))}", escape="\\")
    # NOT in SQL drops rows whose column is NULL; a draft with no intent is "not billing".
    return or_(~match, column.is_(None)) if term.negated else match


def narrow(stmt: Any, pattern: TagPattern) -> Any:
    """`stmt` (drafts joined with their tickets) narrowed to a superset of the matches."""
    return stmt.where(and_(*(or_(*(_condition(t) for t in group)) for group in pattern)))


def matches(pattern: TagPattern, draft: Draft, ticket: Ticket) -> bool:
    return all(any(_term_matches(t, draft, ticket) for t in group) for group in pattern)


def _term_matches(term: PatternTerm, draft: Draft, ticket: Ticket) -> bool:
    if term.field == "intent":
        found = draft.intent == term.value
    elif term.field == "signature":
        found = ticket.signature == term.value
    elif term.field == "sender_domain":
        found = (draft.to_addr or "").lower().endswith(f"@{_domain(term.value)}")
    else:
        found = has_entity(draft, term.value)
    return found != term.negated


def has_entity(draft: Draft, value: str) -> bool:
    wanted = value.casefold()
    entities = (draft.evidence or {}).get("entities") or []
    return any(str(e.get("text", "")).casefold() == wanted for e in entities)
