"""The queue's search box: one term, matched as a substring ignoring case, in the draft's
subject and recipient, the customer mail's subject and sender, and the ticket's signature.

On SQLite it is the OR of LIKEs over the joined row; SQLite's LIKE already ignores ASCII
case and its lower() folds nothing more, so a plain LIKE matches exactly what ILIKE
would, without a function call per row and column. On PostgreSQL an OR across three
tables can use no index, so every draft the other filters keep is joined and tested
(at a million messages, every open draft). There each table is asked on its own, where
its trigram indexes (storage/scale_indexes.py) find the rows, and the draft ids are
united: the same rows, found through indexes. For a common term the planner reads the
open drafts through the covering queue indexes instead. At a million messages with
90,000 open drafts, count and first page went from 1.2-3.7 s to 0.03-0.75 s
(bench/scale_pg.py). A term of fewer than three characters has no trigram to look up,
so it takes the join.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, or_, union
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select

from storage.models import Draft, Message, Ticket

# Fewer characters than a trigram: no index can narrow the rows.
MIN_INDEXED = 3


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class Contains(ColumnElement[bool]):
    """`column` holds `pattern` (a LIKE pattern), ignoring case: LIKE on SQLite, else ILIKE.

    SQLAlchemy writes ILIKE on SQLite as lower(column) LIKE lower(pattern), a function
    call per row and column that made a search over 100,000 drafts take 0.8 s; the
    plain LIKE, matching the same rows, took 0.46 s.
    """

    inherit_cache = False
    type = Boolean()

    def __init__(self, column: Any, pattern: str) -> None:
        self.column, self.pattern = column, pattern


@compiles(Contains)
def _contains_ilike(element: Contains, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.column.ilike(element.pattern, escape="\\"), **kw))


@compiles(Contains, "sqlite")
def _contains_sqlite(element: Contains, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.column.like(element.pattern, escape="\\"), **kw))


class Search(ColumnElement[bool]):
    """The draft matches the search `term`; the query must join Message and Ticket.

    `within`: draft states the query keeps anyway. Each table's lookup is narrowed to
    them too, so that a common term is looked up among the open drafts, not the year.
    """

    inherit_cache = False
    type = Boolean()

    def __init__(self, term: str, within: tuple[str, ...]) -> None:
        self.term, self.within = term.strip(), within
        self.pattern = f"%{escape_like(self.term)}%"


def search(term: str, *, within: tuple[str, ...] = ()) -> Search:
    return Search(term, within)


def _joined_test(element: Search) -> ColumnElement[bool]:
    columns = (col(Draft.subject), col(Message.subject), col(Message.from_addr),
               col(Draft.to_addr), col(Ticket.signature))  # fmt: skip
    return or_(*(Contains(column, element.pattern) for column in columns))


# Both forms come out in parentheses: the caller's AND must not split the OR.
@compiles(Search)
def _search_joined(element: Search, compiler: Any, **kw: Any) -> str:
    return f"({compiler.process(_joined_test(element), **kw)})"


@compiles(Search, "postgresql")
def _search_by_table(element: Search, compiler: Any, **kw: Any) -> str:
    if len(element.term) < MIN_INDEXED:
        return f"({compiler.process(_joined_test(element), **kw)})"
    p = element.pattern
    d1, d2, d3 = (aliased(Draft, name=f"search_d{n}") for n in (1, 2, 3))
    m, t = aliased(Message, name="search_m"), aliased(Ticket, name="search_t")
    by_draft = select(col(d1.id)).where(
        or_(Contains(col(d1.subject), p), Contains(col(d1.to_addr), p))
    )
    by_message = (
        select(col(d2.id))
        .join(m, col(m.id) == col(d2.message_pk))
        .where(or_(Contains(col(m.subject), p), Contains(col(m.from_addr), p)))
    )
    by_ticket = (
        select(col(d3.id))
        .join(t, col(t.id) == col(d3.ticket_id))
        .where(Contains(col(t.signature), p))
    )
    if element.within:
        by_draft = by_draft.where(col(d1.state).in_(element.within))
        by_message = by_message.where(col(d2.state).in_(element.within))
        by_ticket = by_ticket.where(col(d3.state).in_(element.within))
    ids = union(by_draft, by_message, by_ticket)
    return f"({compiler.process(col(Draft.id).in_(ids), **kw)})"
