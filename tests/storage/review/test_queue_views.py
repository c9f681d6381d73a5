"""The queue's desk views and the due sort, read from a real SQLite file.

"mine" and "all" list open drafts of open tickets; pending, solved and spam list each
ticket of that status once, with its newest draft in any state. The due sort is read in
two parts on SQLite (see `storage.review.views`): every page, at every offset, in both
directions, must match the one ORDER BY that PostgreSQL runs.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from storage import review as rv
from storage.db import session_scope
from storage.models import Draft, Ticket
from storage.seed import FIXED_NOW, add_ticket

MINE = rv.QueueFilter(view="mine", sort="due", me="alice", teams=("billing",))


def ticket(engine: Engine, n: int, **desk: Any) -> tuple[int, int]:
    """A ticket with one drafted reply, then its desk fields set as given."""
    ticket_id, draft_id = add_ticket(
        engine,
        sender=f"c{n}@customer.example",
        subject=f"case {n}",
        body="help",
        received_at=FIXED_NOW - timedelta(minutes=n),
        intent="billing" if n % 2 else "bug_report",
    )
    with session_scope(engine) as session:
        row = session.get(Ticket, ticket_id)
        assert row is not None
        for name, value in desk.items():
            setattr(row, name, value)
        session.add(row)
    return ticket_id, draft_id


def listing(engine: Engine, flt: rv.QueueFilter, *, page: int = 1000) -> list[int]:
    with Session(engine) as session:
        out: list[int] = []
        while True:
            rows = rv.page_queue(session=session, flt=flt, offset=len(out), limit=page)
            out += [r.draft_id for r in rows]
            if len(rows) < page:
                return out


def test_views_split_the_desk_by_owner_team_and_status(engine: Engine) -> None:
    _, billing = ticket(engine, 1, team="billing")
    _, tech = ticket(engine, 2, team="tech")
    _, nobodys = ticket(engine, 3)
    _, mine = ticket(engine, 4, owner="alice", team="tech")
    _, bobs = ticket(engine, 5, owner="bob", team="billing")
    pending_ticket, answered = ticket(engine, 6, status="pending", team="billing")
    _, solved = ticket(engine, 7, status="solved")
    _, closed = ticket(engine, 8, status="closed")
    _, spam = ticket(engine, 9, status="spam")
    # The pending ticket's reply went out; a later draft was discarded: that one shows.
    with session_scope(engine) as session:
        first = session.get(Draft, answered)
        assert first is not None
        first.state = "approved"
        later = Draft(ticket_id=pending_ticket, message_pk=first.message_pk, state="discarded")
        session.add_all([first, later])
        session.flush()
        later_id = int(later.id or 0)

    assert set(listing(engine, MINE)) == {billing, nobodys, mine}
    assert set(listing(engine, replace(MINE, view="all"))) == {billing, tech, nobodys, mine, bobs}
    assert listing(engine, replace(MINE, view="pending")) == [later_id]
    assert set(listing(engine, replace(MINE, view="solved"))) == {solved, closed}
    assert listing(engine, replace(MINE, view="spam")) == [spam]
    with Session(engine) as session:
        counts = rv.count_views(session=session, flt=MINE)
        assert counts == {"mine": 3, "all": 5, "pending": 1, "solved": 2, "spam": 1}
        billing_only = replace(MINE, intents=("billing",))  # odd tickets: 1, 3, 5, 7, 9
        assert rv.count_views(session=session, flt=billing_only) == {
            "mine": 2,
            "all": 3,
            "pending": 0,
            "solved": 1,
            "spam": 1,
        }
        for view, n in counts.items():
            assert rv.count_queue(session=session, flt=replace(MINE, view=view)) == n


def _expected(engine: Engine, flt: rv.QueueFilter) -> list[int]:
    """The due order spelled out: soonest first, owing nothing last (oldest ticket first)."""
    with Session(engine) as session:
        rows = rv.page_queue(session=session, flt=replace(flt, sort="age"), limit=10_000)
    far = datetime.max.replace(tzinfo=FIXED_NOW.tzinfo)

    def key(r: rv.QueueRow) -> tuple[bool, datetime, int, int]:
        return (r.reply_due is None, r.reply_due or far, r.ticket_id, r.draft_id)

    ordered = sorted(rows, key=key, reverse=flt.descending)
    return [r.draft_id for r in ordered]


@pytest.mark.parametrize("descending", [False, True], ids=["soonest", "latest"])
def test_due_sort_pages_line_up_across_owed_and_not_owed(engine: Engine, descending: bool) -> None:
    dues = [None if n % 3 == 0 else FIXED_NOW + timedelta(minutes=(n * 7) % 50 - 20)
            for n in range(23)]  # fmt: skip
    for n, due in enumerate(dues):
        ticket(engine, n, reply_due=due)
    flt = rv.QueueFilter(view="all", sort="due", descending=descending)
    expected = _expected(engine, flt)
    assert len(expected) == 23 and listing(engine, flt) == expected
    for size in (1, 4, 7, 15):
        assert listing(engine, flt, page=size) == expected
    with Session(engine) as session:
        for offset in (14, 15, 16, 22, 23, 30):  # starts inside, at and past the first part
            rows = rv.page_queue(session=session, flt=flt, offset=offset, limit=5)
            assert [r.draft_id for r in rows] == expected[offset : offset + 5]
    with Session(engine) as session:
        top = rv.page_queue(session=session, flt=flt, limit=1)[0]
    if descending:
        assert top.reply_due is None  # reversed: the ones owing nothing come first
    else:
        assert top.reply_due == min(d for d in dues if d)  # the most overdue first


def test_unknown_view_is_a_clear_error(engine: Engine) -> None:
    ticket(engine, 1)
    with Session(engine) as session, pytest.raises(rv.ReviewError, match="no queue view"):
        rv.page_queue(session=session, flt=replace(MINE, view="later"))
