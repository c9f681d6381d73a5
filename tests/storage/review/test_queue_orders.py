"""Every sort of the queue gives the same order on SQLite and on PostgreSQL, in every view.

The two backends get differently written queries: SQLite's planner hints (`|| ''`, the
"mine" test in a CASE, the due sort read in two parts) and PostgreSQL's plain conditions,
its native NULL order for the due sort and its partial indexes of the open drafts
(storage/scale_indexes.py). The order is spelled out here in Python from the rows.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from storage import review as rv
from storage.db import session_scope
from storage.models import Draft, Ticket
from storage.seed import FIXED_NOW, add_ticket

ME, TEAMS = "alice", ("billing",)
far = FIXED_NOW + timedelta(days=3650)
KEYS: dict[str, Callable[[rv.QueueRow], tuple[Any, ...]]] = {
    "age": lambda r: (r.written_at, r.draft_id),
    "due": lambda r: (r.reply_due is None, r.reply_due or far, r.ticket_id, r.draft_id),
    "confidence": lambda r: (r.confidence, r.draft_id),
    "intent": lambda r: (r.intent, r.draft_id),
}


@pytest.fixture
def db(sqlite_and_pg: Engine) -> Engine:
    return sqlite_and_pg


def fill(engine: Engine) -> None:
    """Eighteen tickets: mail times, confidences and dues that tie and run against the
    ids, owners and teams for "mine", and a few tickets that are not open."""
    for n in range(18):
        ticket_id, draft_id = add_ticket(
            engine,
            sender=f"c{n}@customer{n}.example",
            subject=f"case {n}",
            body="help",
            received_at=FIXED_NOW - timedelta(minutes=(n * 7) % 11),
            intent=("billing", "bug_report", "outage_report")[n % 3],
            confidence=(0.5, 0.7, 0.7, 0.9)[n % 4],
        )
        with session_scope(engine) as session:
            ticket = session.get(Ticket, ticket_id)
            assert ticket is not None
            ticket.reply_due = None if n % 4 == 0 else FIXED_NOW + timedelta(hours=n % 5)
            ticket.owner = (None, "alice", "bob")[n % 3] if n % 2 else None
            ticket.team = (None, "billing", "tech")[(n // 2) % 3]
            ticket.status = "pending" if n in (5, 11) else "open"
            session.add(ticket)
            if n == 7:  # a second open draft on one ticket
                first = session.get(Draft, draft_id)
                assert first is not None
                session.add(
                    Draft(
                        ticket_id=ticket_id,
                        message_pk=first.message_pk,
                        intent="billing",
                        confidence=0.7,
                    )
                )


def rows(engine: Engine, flt: rv.QueueFilter) -> list[rv.QueueRow]:
    with Session(engine) as session:
        return rv.page_queue(session=session, flt=flt, limit=1000)


@pytest.mark.parametrize("sort", list(KEYS))
@pytest.mark.parametrize("view", [None, "all", "mine"])
def test_each_sort_pages_in_the_order_spelled_out(db: Engine, sort: str, view: str | None) -> None:
    fill(db)
    for descending in (False, True):
        flt = rv.QueueFilter(sort=sort, descending=descending, view=view, me=ME, teams=TEAMS)
        listed = rows(db, flt)
        expected = [r.draft_id for r in sorted(listed, key=KEYS[sort], reverse=descending)]
        assert [r.draft_id for r in listed] == expected
        with Session(db) as session:
            paged = [
                r.draft_id
                for offset in range(0, len(listed) + 3, 5)
                for r in rv.page_queue(session=session, flt=flt, offset=offset, limit=5)
            ]
        assert paged == expected
    every = {r.draft_id for r in rows(db, rv.QueueFilter(sort=sort))}
    shown = {r.draft_id for r in rows(db, rv.QueueFilter(sort=sort, view=view, me=ME, teams=TEAMS))}
    if view is None:
        assert shown == every and len(every) == 19
    elif view == "all":
        assert len(shown) == 17  # not the two pending tickets
    else:
        assert 0 < len(shown) < 17
