"""Reading the queue: filter, sort, page, count and tag by pattern, plus the read engine.

Only reads live here, so the UI's frequent polls share one set of query helpers.
"""

# QueueFilter() as a default is safe: it is a frozen dataclass, which B008 only
# recognises in the module that defines it.
# ruff: noqa: B008

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import case, event, func
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool
from sqlmodel import Session, col, create_engine, select

from storage.db import BUSY_TIMEOUT_MS, make_engine
from storage.models import Draft, Message, Ticket
from storage.review.patterns import TagPattern, checked, matches, narrow, one_term
from storage.review.rows import ROW_COLUMNS, queue_row
from storage.review.search import search
from storage.review.types import (
    MAX_TAGGED,
    SORT_KEYS,
    VIEWS,
    QueueFilter,
    QueueRow,
    ReviewError,
)
from storage.review.views import (
    DESK_SORTS,
    STATUS_VIEW,
    desk_order,
    due_page_ids,
    filters_states,
    latest_draft,
    needs_ticket,
    view_conditions,
    walks_due_index,
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


def _joined(stmt: Any) -> Any:
    return stmt.join(Message, col(Message.id) == col(Draft.message_pk)).join(
        Ticket, col(Ticket.id) == col(Draft.ticket_id)
    )


def _queue_base(flt: QueueFilter) -> Any:
    return _apply_filter(_joined(select(Draft, Message, Ticket)), flt)


def _narrow(stmt: Any, flt: QueueFilter) -> Any:
    """Join only the tables the filter and the sort need; draft-only queries use its indexes."""
    if flt.mailbox or flt.search.strip() or flt.sort == "subject":
        stmt = stmt.join(Message, col(Message.id) == col(Draft.message_pk))
    if flt.search.strip() or flt.sort == "signature" or needs_ticket(flt):
        stmt = stmt.join(Ticket, col(Ticket.id) == col(Draft.ticket_id))
    return stmt


def _apply_filter(stmt: Any, flt: QueueFilter, *, state_index: bool = True) -> Any:
    stmt = stmt.where(*view_conditions(flt)) if flt.view is not None else stmt
    if flt.states and filters_states(flt):
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
        within = flt.states if flt.states and filters_states(flt) else ()
        stmt = stmt.where(search(flt.search, within=within))  # see storage.review.search
    return stmt


_SORT_COLUMNS: dict[str, Any] = {
    # The mail's own time, copied onto the draft (storage/mail_time.py): no join to sort.
    "age": col(Draft.mail_written_at),
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
    if flt.sort not in SORT_KEYS:
        raise ReviewError(f"cannot sort by {flt.sort!r} (choose from {', '.join(SORT_KEYS)})")
    dialect = session.get_bind().dialect.name
    if flt.sort in DESK_SORTS:
        order = desk_order(flt.sort, flt.descending, dialect)
    else:
        column = _SORT_COLUMNS[flt.sort]
        order = [column.desc() if flt.descending else column.asc()]
    tiebreak = col(Draft.id).desc() if flt.descending else col(Draft.id).asc()
    by_due = walks_due_index(flt, dialect)
    # On SQLite, keep the planner off the state index where another index gives the order.
    by_sort_index = by_due or (dialect == "sqlite" and flt.sort in ("intent", "confidence"))
    # Two steps: sort narrow (ids only, minimal joins), then read the page's columns.
    filtered = _apply_filter(
        _narrow(select(col(Draft.id)).select_from(Draft), flt),
        flt,
        state_index=not by_sort_index,
    )
    if by_due:
        ids = due_page_ids(
            session, filtered, descending=flt.descending, offset=max(0, offset), limit=limit
        )
    else:
        page = filtered.order_by(*order, tiebreak).offset(max(0, offset)).limit(max(0, limit))
        ids = [int(i) for i in session.exec(page).all()]
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


def count_views(*, session: Session, flt: QueueFilter = QueueFilter()) -> dict[str, int]:
    """How many rows each view lists under the rest of `flt` (the view tabs).

    Two reads, not one per view: the open drafts of open tickets, with how many of them
    are "mine"; and the tickets of every other status, each with its newest draft.
    """
    work = replace(flt, view="all", sort="state")
    mine = view_conditions(replace(work, view="mine"))[-1]
    stmt = select(func.count(col(Draft.id)), func.sum(case((mine, 1), else_=0)))
    every, own = session.exec(_apply_filter(_narrow(stmt.select_from(Draft), work), work)).one()
    done = replace(flt, view=None, states=(), sort="state")
    by_status = (
        _apply_filter(
            _narrow(select(col(Ticket.status), func.count()).select_from(Draft), work), done
        )
        .where(col(Ticket.status).in_(list(STATUS_VIEW)), latest_draft())
        .group_by(col(Ticket.status))
    )
    counts = dict.fromkeys(VIEWS, 0) | {"mine": int(own or 0), "all": int(every or 0)}
    for status, n in session.exec(by_status).all():
        counts[STATUS_VIEW[status]] += int(n)
    return counts


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
