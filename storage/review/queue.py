"""Reading the queue: filter, sort, page, count and tag by pattern, plus the read engine.

Only reads live here, so the UI's frequent polls share one set of query helpers.
"""

# QueueFilter() as a default is safe: it is a frozen dataclass, which B008 only
# recognises in the module that defines it.
# ruff: noqa: B008

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import Boolean, event, func, or_
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, create_engine, select

from storage.db import BUSY_TIMEOUT_MS, make_engine
from storage.models import Draft, Message, Ticket
from storage.review.patterns import TagPattern, checked, matches, narrow, one_term
from storage.review.rows import ROW_COLUMNS, queue_row
from storage.review.types import (
    MAX_TAGGED,
    SORT_KEYS,
    QueueFilter,
    QueueRow,
    ReviewError,
)

# ---------------------------------------------------------------- queue queries


def read_engine(url: str) -> Engine:
    """An engine for the review UI's frequent reads.

    The writer engine opens every SQLite transaction with BEGIN IMMEDIATE, which takes
    the write lock even to read. A queue poll every few seconds that counts 100,000
    rows would then stall ingest (and its SMTP 250) each time, so the UI reads inside
    a deferred BEGIN: under WAL that is a snapshot that never takes the lock. One
    snapshot per session matters as much as the lock: a page is read in two steps
    (sorted ids, then their columns) plus counts, and a release committed between the
    steps must not show a draft that is no longer open. PostgreSQL gets the same
    guarantee from a read-only REPEATABLE READ transaction. Writes still go through
    `make_engine`.
    """
    if not url.startswith("sqlite"):
        return make_engine(url).execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        )
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
        poolclass=NullPool,
    )
    event.listen(engine, "connect", _reader_pragmas)
    event.listen(engine, "begin", _reader_begin)
    return engine


def _reader_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, deferred
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA query_only=ON")
    cur.close()


def _reader_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN")  # deferred: a WAL read snapshot, no lock


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _joined(stmt: Any) -> Any:
    return stmt.join(Message, col(Message.id) == col(Draft.message_pk)).join(
        Ticket, col(Ticket.id) == col(Draft.ticket_id)
    )


def _queue_base(flt: QueueFilter) -> Any:
    return _apply_filter(_joined(select(Draft, Message, Ticket)), flt)


def _narrow(stmt: Any, flt: QueueFilter) -> Any:
    """Join only the tables the filter and the sort need; draft-only queries use its indexes."""
    if flt.mailbox or flt.search.strip() or flt.sort in ("age", "subject"):
        stmt = stmt.join(Message, col(Message.id) == col(Draft.message_pk))
    if flt.search.strip() or flt.sort == "signature":
        stmt = stmt.join(Ticket, col(Ticket.id) == col(Draft.ticket_id))
    return stmt


class _Contains(ColumnElement[bool]):
    """`column` matches a LIKE pattern, ignoring case.

    SQLAlchemy writes ILIKE on SQLite as lower(column) LIKE lower(pattern), a function
    call per row and column that made a search over 100,000 drafts take 0.8 s. SQLite's
    LIKE already ignores ASCII case, and its lower() folds nothing beyond ASCII, so a
    plain LIKE matches exactly the same rows there (0.46 s); elsewhere it is ILIKE.
    """

    inherit_cache = False
    type = Boolean()

    def __init__(self, column: Any, pattern: str) -> None:
        self.column, self.pattern = column, pattern


@compiles(_Contains)
def _contains_ilike(element: _Contains, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.column.ilike(element.pattern, escape="\\"), **kw))


@compiles(_Contains, "sqlite")
def _contains_sqlite(element: _Contains, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.column.like(element.pattern, escape="\\"), **kw))


def _apply_filter(stmt: Any, flt: QueueFilter, *, state_index: bool = True) -> Any:
    if flt.states:
        # Skipping the state index lets SQLite walk the sort column's index and stop
        # after one page instead of sorting every open draft.
        state = col(Draft.state) if state_index else col(Draft.state).concat("")
        stmt = stmt.where(state.in_(flt.states))
    if flt.intents:
        stmt = stmt.where(col(Draft.intent).in_(flt.intents))
    if flt.min_confidence is not None:
        stmt = stmt.where(col(Draft.confidence) >= flt.min_confidence)
    if flt.max_confidence is not None:
        stmt = stmt.where(col(Draft.confidence) <= flt.max_confidence)
    if flt.mailbox:
        stmt = stmt.where(col(Message.mailbox) == flt.mailbox)
    if flt.search.strip():
        pattern = f"%{_escape_like(flt.search.strip())}%"
        stmt = stmt.where(
            or_(
                *(
                    _Contains(column, pattern)
                    for column in (
                        col(Draft.subject),
                        col(Message.subject),
                        col(Message.from_addr),
                        col(Draft.to_addr),
                        col(Ticket.signature),
                    )
                )
            )
        )
    return stmt


_SORT_COLUMNS: dict[str, Any] = {
    "age": col(Message.written_at),
    "sender": col(Draft.to_addr),
    "subject": col(Message.subject),
    "intent": col(Draft.intent),
    "confidence": col(Draft.confidence),
    "signature": col(Ticket.signature),
    "state": col(Draft.state),
}


def page_queue(
    *, session: Session, flt: QueueFilter = QueueFilter(), offset: int = 0, limit: int = 200
) -> list[QueueRow]:
    """One page of the queue, sorted and filtered in the database."""
    if flt.sort not in _SORT_COLUMNS:
        raise ReviewError(f"cannot sort by {flt.sort!r} (choose from {', '.join(SORT_KEYS)})")
    column = _SORT_COLUMNS[flt.sort]
    order = column.desc() if flt.descending else column.asc()
    tiebreak = col(Draft.id).desc() if flt.descending else col(Draft.id).asc()
    sqlite = session.get_bind().dialect.name == "sqlite"
    by_draft_index = sqlite and flt.sort in ("intent", "confidence")
    # Two steps: sort narrow (ids only, minimal joins), then read the page's columns.
    ids_stmt = (
        _apply_filter(
            _narrow(select(col(Draft.id)).select_from(Draft), flt),
            flt,
            state_index=not by_draft_index,
        )
        .order_by(order, tiebreak)
        .offset(max(0, offset))
        .limit(max(0, limit))
    )
    ids = [int(i) for i in session.exec(ids_stmt).all()]
    if not ids:
        return []
    rows = session.exec(
        _joined(select(*ROW_COLUMNS).select_from(Draft)).where(col(Draft.id).in_(ids))
    ).all()
    by_id = {int(r[0]): queue_row(r) for r in rows}
    return [by_id[i] for i in ids if i in by_id]


def count_queue(*, session: Session, flt: QueueFilter = QueueFilter()) -> int:
    """How many drafts match `flt` (the "of N" in "showing 200 of N")."""
    counted = replace(flt, sort="state")  # a count needs no sort column joined
    stmt = _narrow(select(func.count(col(Draft.id))).select_from(Draft), counted)
    return int(session.exec(_apply_filter(stmt, counted)).one())


def tag_by_pattern(
    *,
    session: Session,
    field_name: str = "",
    value: str = "",
    flt: QueueFilter = QueueFilter(),
    pattern: TagPattern | None = None,
) -> list[int]:
    """Draft ids in the filtered queue whose `field_name` matches `value`, or that match
    `pattern` (terms ANDed, alternatives ORed, terms negated: see `patterns`).

    intent and signature match exactly; sender_domain matches the address domain;
    entity matches any extracted entity text (case-insensitive), e.g. a hostname.
    """
    wanted = checked(one_term(field_name, value) if pattern is None else pattern)
    stmt = narrow(_queue_base(flt), wanted).order_by(col(Draft.id)).limit(MAX_TAGGED)
    return [
        int(draft.id or 0)
        for draft, _message, ticket in session.exec(stmt).all()
        if matches(wanted, draft, ticket)
    ]
