"""The queue's views of the desk (whose tickets, in which status) and the desk's sorts.

A rep works from "mine" (tickets they own, and unowned ones of their teams or of no
team: `storage.desk.owners.mine_filter`) or "all". Both list the open drafts of open
tickets, because that is where the work is. A ticket waiting on the customer (pending),
done (solved or closed) or marked spam usually has no open draft: its reply went out,
or nobody will write one. Those views list each such ticket once, with its latest draft
in whatever state it is (approved, sent, discarded...), so the rep sees what was last
said; the draft-state filter does not apply to them.

The default sort is by due: soonest reply first, then tickets that owe nothing (oldest
ticket first). "Nulls last" defeats SQLite's index on `reply_due`, so on SQLite a page
is read in two ordered parts, each walking that index (`due_page_ids`); on PostgreSQL,
which puts NULLs last by itself, one ORDER BY on the due index gives the same order.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, case, func, literal_column
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from storage.models import Draft, Ticket
from storage.review.types import VIEWS, QueueFilter, ReviewError

OPEN_VIEWS: tuple[str, ...] = ("mine", "all")
# The ticket statuses each of the other views lists.
VIEW_STATUSES: dict[str, tuple[str, ...]] = {
    "pending": ("pending",),
    "solved": ("solved", "closed"),
    "spam": ("spam",),
}
STATUS_VIEW = {status: view for view, statuses in VIEW_STATUSES.items() for status in statuses}
# Sorts that read the ticket's desk columns (so the ticket must be joined).
DESK_SORTS = ("due", "priority", "owner")
_PRIORITY_RANK = case(
    {"urgent": 0, "high": 1, "normal": 2, "low": 3}, value=col(Ticket.priority), else_=4
)


def walks_due_index(flt: QueueFilter, dialect: str) -> bool:
    """Whether to read the page in two parts along the due index (see the module)."""
    return dialect == "sqlite" and flt.sort == "due" and filters_states(flt)


def needs_ticket(flt: QueueFilter) -> bool:
    return flt.view is not None or flt.sort in DESK_SORTS


def filters_states(flt: QueueFilter) -> bool:
    """Whether `flt.states` (draft states) narrows this view."""
    return flt.view is None or flt.view in OPEN_VIEWS


def view_conditions(flt: QueueFilter) -> list[Any]:
    """WHERE terms for `flt.view` over Draft joined to Ticket; none without a view."""
    if flt.view is None:
        return []
    if flt.view not in VIEWS:
        raise ReviewError(f"no queue view {flt.view!r} (choose from {', '.join(VIEWS)})")
    if flt.view in OPEN_VIEWS:
        # Most tickets of a young desk are open: on SQLite `|| ''` keeps the planner off
        # the status index, which suits only the small views below.
        is_open = col(Ticket.status) == literal_column("'open'")
        terms: list[Any] = [
            PlannerHint(is_open, sqlite=col(Ticket.status).concat("") == literal_column("'open'"))
        ]
        if flt.view == "mine":
            # Imported here: storage.desk.owners imports this package's types, and a
            # module-level import would make the two packages' first imports circular.
            from storage.desk.owners import mine_filter

            # On SQLite tested row by row, not through the owner index: that index would
            # fetch everything nobody owns (most of the desk) and leave it all to sort,
            # where walking the due index finds the first page in a few rows.
            mine = mine_filter(flt.me, flt.teams)
            terms.append(PlannerHint(mine, sqlite=case((mine, 1), else_=0) == 1))
        return terms
    return [col(Ticket.status).in_(VIEW_STATUSES[flt.view]), latest_draft()]


class PlannerHint(ColumnElement[bool]):
    """A condition written plainly, and on SQLite in a form that steers its planner.

    SQLite's planner picks indexes by the shape of a condition, so the open views hide
    some from it (above). PostgreSQL's estimates how many rows a condition keeps from
    its statistics, which a disguised condition defeats: taking "mine" for a handful of
    rows, it joined and sorted every open draft (80 ms a page at a million messages)
    instead of walking a sort's index (storage/scale_indexes.py) for a few hundred.
    """

    inherit_cache = False  # carries its conditions: statements using it are not cached
    type = Boolean()

    def __init__(self, plain: Any, *, sqlite: Any) -> None:
        self.plain, self.sqlite = plain, sqlite


@compiles(PlannerHint)
def _plainly(element: PlannerHint, compiler: Any, **kw: Any) -> str:
    return f"({compiler.process(element.plain, **kw)})"


@compiles(PlannerHint, "sqlite")
def _for_sqlite(element: PlannerHint, compiler: Any, **kw: Any) -> str:
    return f"({compiler.process(element.sqlite, **kw)})"


def latest_draft() -> Any:
    """The draft is its ticket's newest."""
    later = aliased(Draft)
    newest = select(func.max(later.id)).where(col(later.ticket_id) == col(Draft.ticket_id))
    return col(Draft.id) == newest.scalar_subquery()


def desk_order(sort: str, descending: bool, dialect: str) -> list[Any]:
    """ORDER BY terms for a desk sort; due puts tickets that owe nothing last."""
    terms: list[Any]
    if sort == "due" and dialect == "postgresql":
        # The same order: PostgreSQL sorts NULLs last ascending and first descending, and
        # the open tickets' due index (storage/scale_indexes.py) gives it as it is.
        terms = [col(Ticket.reply_due), col(Ticket.id)]
    elif sort == "due":
        terms = [col(Ticket.reply_due).is_(None), col(Ticket.reply_due), col(Ticket.id)]
    elif sort == "priority":
        terms = [_PRIORITY_RANK]
    else:
        terms = [col(Ticket.owner).is_(None), col(Ticket.owner)]
    return [t.desc() if descending else t.asc() for t in terms]


def due_page_ids(
    session: Session, ids: Any, *, descending: bool, offset: int, limit: int
) -> list[int]:
    """A page of `ids` (a filtered `select(Draft.id)` joined to Ticket) sorted by due.

    The tickets that owe a reply and those that do not are two index-ordered reads; the
    second is read only when the page runs past the first, and counted only when the
    page starts beyond it. The order is `desk_order("due")` then the draft id.
    """
    due, tail = col(Ticket.reply_due), [col(Ticket.id), col(Draft.id)]

    def ordered(*terms: Any) -> list[Any]:
        return [t.desc() if descending else t.asc() for t in terms]

    owed = ids.where(due.is_not(None)).order_by(*ordered(due, *tail))
    nothing = ids.where(due.is_(None)).order_by(*ordered(*tail))
    first, second = (nothing, owed) if descending else (owed, nothing)
    found = [int(i) for i in session.exec(first.offset(offset).limit(limit)).all()]
    if len(found) == limit:
        return found
    if found or not offset:
        before = offset + len(found)
    else:
        counted = select(func.count()).select_from(first.order_by(None).subquery())
        before = int(session.exec(counted).one())
    rest = second.offset(max(0, offset - before)).limit(limit - len(found))
    return found + [int(i) for i in session.exec(rest).all()]
