"""The rep's own queue: opened on "mine", switched between views, tickets taken, assigned
and handed over, and the reply clock in the Due column, all against a real SQLite file."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from rich.text import Text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from review_tui.screens.dialogs import ChoiceScreen, PickOrTypeScreen
from review_tui.widgets.queue_table import QueueTable
from storage.db import session_scope
from storage.desk.hours import Desk
from storage.models import AuditLog, Draft, Ticket
from storage.seed import add_ticket
from tests.review_tui.conftest import APP_NOW, notes, settle
from tests.review_tui.test_app import AppFactory, screen_text, text_of
from tests.review_tui.test_workday_queue import put_cursor_on, queue_of

DESK = Desk(teams=(("billing", ("alice", "ana")), ("tech", ("bob",))))
WIDE = (180, 40)


def desk_ticket(db: Engine, name: str, minutes_ago: int = 10, **desk: Any) -> int:
    """A ticket with one draft, its desk fields set as given; the draft's id."""
    ticket_id, draft_id = add_ticket(
        db,
        sender=f"{name}@customer.example",
        subject=f"{name} needs help",
        body="hello",
        received_at=APP_NOW - timedelta(minutes=minutes_ago),
    )
    with session_scope(db) as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        for field, value in desk.items():
            setattr(ticket, field, value)
        session.add(ticket)
    return draft_id


def ticket_of(db: Engine, draft_id: int) -> Ticket:
    with Session(db) as session:
        draft = session.get(Draft, draft_id)
        assert draft is not None
        ticket = session.get(Ticket, draft.ticket_id)
        assert ticket is not None
        return ticket


def audited(db: Engine, action: str) -> list[AuditLog]:
    with Session(db) as session:
        query = select(AuditLog).where(AuditLog.action == action).order_by(col(AuditLog.id))
        return list(session.exec(query).all())


@pytest.fixture
def desk_db(db: Engine) -> dict[str, int]:
    return {
        "billing": desk_ticket(db, "billing", team="billing"),
        "tech": desk_ticket(db, "tech", team="tech"),
        "anyone": desk_ticket(db, "anyone"),
        "alices": desk_ticket(db, "alices", owner="alice", team="tech"),
        "bobs": desk_ticket(db, "bobs", owner="bob", team="billing"),
    }


def shown(app: Any) -> set[int]:
    return {r.draft_id for r in queue_of(app).rows}


async def test_each_rep_opens_on_their_own_queue(
    desk_db: dict[str, int], make_app: AppFactory
) -> None:
    mine = {"alice": {"billing", "anyone", "alices"}, "bob": {"tech", "anyone", "bobs"}}
    for rep, names in mine.items():
        app = make_app(rep, desk=DESK)
        async with app.run_test(size=WIDE) as pilot:
            await settle(pilot)
            assert queue_of(app).flt.view == "mine"
            assert shown(app) == {desk_db[n] for n in names}  # never another team's unowned
            tabs = text_of(app, "#queue-views")
            assert "1 Mine 3" in tabs and "2 All 5" in tabs and "3 Pending 0" in tabs
            await pilot.press("2")
            await settle(pilot)
            assert shown(app) == set(desk_db.values())
            assert "All · filter:" in text_of(app, "#queue-filter")


async def test_take_assign_and_hand_over_from_the_queue(
    db: Engine, desk_db: dict[str, int], make_app: AppFactory
) -> None:
    billing = desk_db["billing"]
    app = make_app("alice", desk=DESK)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        queue = queue_of(app)
        await put_cursor_on(pilot, queue, billing)
        await pilot.press("A")
        await settle(pilot)
        assert ticket_of(db, billing).owner == "alice"
        assert "ticket #1 is yours" in notes(app)
        assert "alice" in screen_text(app)  # the Owner column

        await pilot.press("a")  # to bob, picked from the desk's reps
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, PickOrTypeScreen)
        offered = [oid for oid, _label in dialog.choices]
        assert offered == ["alice", "ana", "bob", "team:billing", "team:tech", "nobody"]
        await pilot.press("down", "down", "enter")
        await settle(pilot)
        assert ticket_of(db, billing).owner == "bob"
        assert billing not in shown(app)  # bob's now: out of alice's own queue
        assert "2 All 5" in text_of(app, "#queue-views")

        await pilot.press("2")
        await settle(pilot)
        await put_cursor_on(pilot, queue, billing)
        await pilot.press("a", *"team:nope", "enter")  # a typed team must exist
        await pilot.pause()
        assert "no team called 'nope'" in text_of(app, "#pick-error")
        await pilot.press("ctrl+u", *"team:tech", "enter")
        await settle(pilot)
        handed = ticket_of(db, billing)
        assert (handed.owner, handed.team) == (None, "tech")
        await pilot.press("a", *"carol", "enter")  # a rep not in the config yet
        await settle(pilot)
        assert ticket_of(db, billing).owner == "carol"

        await pilot.press("P")
        await pilot.pause()
        assert isinstance(app.screen, ChoiceScreen)
        await pilot.press("home", "enter")
        await settle(pilot)
    final = ticket_of(db, billing)
    assert (final.priority, final.priority_by) == ("urgent", "alice")
    moves = [
        (a.details["to"]["owner"], a.details["to"]["team"]) for a in audited(db, "ticket.assigned")
    ]
    assert moves == [("alice", "billing"), ("bob", "billing"), (None, "tech"), ("carol", "tech")]
    assert all(a.actor == "alice" for a in audited(db, "ticket.assigned"))
    assert [a.details["to"] for a in audited(db, "ticket.priority")] == ["urgent"]


async def test_due_column_counts_down_and_late_tickets_come_first(
    db: Engine, make_app: AppFactory
) -> None:
    soon = desk_ticket(db, "soon", minutes_ago=50, reply_due=APP_NOW + timedelta(minutes=42))
    later = desk_ticket(
        db, "later", minutes_ago=5, reply_due=APP_NOW + timedelta(hours=3, minutes=10)
    )
    idle = desk_ticket(db, "idle", minutes_ago=90)  # nothing owed
    late = desk_ticket(db, "late", minutes_ago=1, reply_due=APP_NOW - timedelta(hours=1, minutes=5))
    days = desk_ticket(db, "days", minutes_ago=2, reply_due=APP_NOW + timedelta(days=2, hours=1))
    app = make_app("alice", desk=DESK)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        queue = queue_of(app)
        assert [r.draft_id for r in queue.rows] == [late, soon, later, days, idle]
        assert "sort due soonest first" in text_of(app, "#queue-status")
        table = queue.query_one(QueueTable)

        def due(draft_id: int) -> Text:
            cell = table.get_cell(str(draft_id), "due")
            assert isinstance(cell, Text)
            return cell

        assert (due(late).plain, str(due(late).style)) == ("-1h05 late", "bold red")
        assert [due(d).plain for d in (soon, later, days, idle)] == ["42m", "3h10", "2d", ""]
        assert not str(due(soon).style)
        assert "-1h05 late" in screen_text(app)
        await pilot.press("O")  # reversed: nothing owed first, the late one last
        await settle(pilot)
        assert [r.draft_id for r in queue.rows] == [idle, days, later, soon, late]


async def test_view_and_sort_are_remembered_per_rep_across_restarts(
    db: Engine, desk_db: dict[str, int], make_app: AppFactory
) -> None:
    pending = desk_db["tech"]
    with session_scope(db) as session:  # answered: the reply went out, the ticket waits
        draft = session.get(Draft, pending)
        ticket = session.get(Ticket, draft.ticket_id if draft else 0)
        assert draft is not None and ticket is not None
        draft.state, ticket.status = "approved", "pending"
        session.add_all([draft, ticket])
    app = make_app("alice", desk=DESK)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        assert "3 Pending 1" in text_of(app, "#queue-views")
        await pilot.press("3")
        await settle(pilot)
        assert shown(app) == {pending}
        assert "pending" in screen_text(app)  # the State column shows the ticket's status
        assert "latest draft" in text_of(app, "#queue-filter")
        await pilot.press("N")  # newest first
        await settle(pilot)
    again = make_app("alice", desk=DESK)
    async with again.run_test(size=WIDE) as pilot:
        await settle(pilot)
        flt = queue_of(again).flt
        assert (flt.view, flt.sort, flt.descending) == ("pending", "age", True)
        assert shown(again) == {pending}
        await pilot.press("v", "v", "v")  # pending → solved → spam → mine
        await settle(pilot)
        assert queue_of(again).flt.view == "mine"
    bob = make_app("bob", desk=DESK)
    async with bob.run_test(size=WIDE) as pilot:
        await settle(pilot)
        flt = queue_of(bob).flt
        assert (flt.view, flt.sort, flt.descending) == ("mine", "due", False)
        assert pending not in shown(bob)  # pending is not in anyone's open queue
    third = make_app("alice", desk=DESK)
    async with third.run_test(size=WIDE) as pilot:
        await settle(pilot)
        assert queue_of(third).flt.view == "mine"  # the last view alice chose


def test_due_text_reads_plainly() -> None:
    from review_tui.widgets.desk import due_text

    now = datetime(2026, 11, 20, 12, tzinfo=APP_NOW.tzinfo)
    cases = {
        timedelta(seconds=45): "45s",
        timedelta(minutes=42): "42m",
        timedelta(hours=23, minutes=59): "23h59",
        timedelta(days=2, hours=5): "2d",
        -timedelta(minutes=3): "-3m late",
        -timedelta(days=3): "-3d late",
    }
    for delta, text in cases.items():
        assert due_text(now + delta, now).plain == text
    assert due_text(None, now).plain == ""
