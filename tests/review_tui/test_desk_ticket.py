"""The desk from the ticket screen: the Why panel's reasons, status moves (solve, close,
spam, reopen), taking the ticket, and merging or splitting tickets."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from review_tui.screens.dialogs import ConfirmScreen, PromptScreen
from review_tui.screens.ticket import TicketScreen
from storage import review as rv
from storage.models import AuditLog, LabelCorrection, Message, Ticket
from storage.seed import add_ticket
from tests.review_tui.conftest import APP_NOW, notes, settle
from tests.review_tui.test_app import AppFactory, open_draft, screen_text, text_of
from tests.review_tui.test_desk_queue import DESK, desk_ticket, ticket_of
from tests.review_tui.test_workday_ticket import footer_keys

SIZE = (140, 45)


async def test_why_panel_gives_the_desks_reasons(db: Engine, make_app: AppFactory) -> None:
    draft_id = desk_ticket(
        db,
        "dana",
        owner="ana",
        team="billing",
        routed_by="[[routing]] intent = billing → team billing",
        priority="high",
        priority_by="desk: billing from a [desk] vip",
        reply_due=APP_NOW - timedelta(hours=1, minutes=5),
    )
    app = make_app("alice", desk=DESK)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("2")  # ana's ticket: in "all", not in alice's own queue
        await settle(pilot)
        await open_draft(pilot, app, draft_id)
        why = text_of(app, "#ev-why")
        assert "status open" in why
        assert "owner ana · team billing" in why
        assert "routed by [[routing]] intent = billing → team billing" in why
        assert "priority high (desk: billing from a [desk] vip)" in why
        assert "reply -1h05 late" in why
        assert {"status('solved')", "status('closed')", "status('spam')"} <= footer_keys(app)
        shown = screen_text(app)
        assert "S Solve" in shown and "C Close" in shown and "X Spam" in shown


async def test_status_keys_move_the_ticket_and_say_when_they_cannot(
    db: Engine, make_app: AppFactory
) -> None:
    draft_id = desk_ticket(db, "erin", team="billing")
    ticket_id = ticket_of(db, draft_id).id
    app = make_app("alice", desk=DESK)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        ticket = await open_draft(pilot, app, draft_id)
        await pilot.press("S")
        await settle(pilot)
        assert ticket_of(db, draft_id).status == "solved"
        assert "status solved" in text_of(app, "#ev-why")
        await pilot.press("O")
        await settle(pilot)
        assert ticket_of(db, draft_id).status == "open"
        await pilot.press("X")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # not spam after all
        await settle(pilot)
        assert ticket_of(db, draft_id).status == "open"
        await pilot.press("X", "y")
        await settle(pilot)
        assert ticket_of(db, draft_id).status == "spam"
        await pilot.press("O", "C", "y")
        await settle(pilot)
        assert ticket_of(db, draft_id).status == "closed"
        await pilot.press("O")  # closed is for good: storage refuses, the rep is told
        await settle(pilot)
        assert ticket_of(db, draft_id).status == "closed"
        assert "a closed ticket cannot be set to open by hand" in notes(app)
        assert app.screen is ticket and "status closed" in text_of(app, "#ev-why")
    with Session(db) as session:
        moves = session.exec(
            select(AuditLog)
            .where(AuditLog.action == "ticket.status", AuditLog.entity_id == ticket_id)
            .order_by(col(AuditLog.id))
        ).all()
        spam = session.exec(select(LabelCorrection)).all()
    assert [(m.details["to"], m.actor) for m in moves] == [
        ("solved", "alice"),
        ("open", "alice"),
        ("spam", "alice"),
        ("open", "alice"),
        ("closed", "alice"),
    ]
    assert [c.new_label for c in spam] == ["spam"]


async def test_take_and_priority_from_the_ticket(db: Engine, make_app: AppFactory) -> None:
    draft_id = desk_ticket(db, "finn", team="billing", owner="ana")
    app = make_app("alice", desk=DESK)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("2")
        await settle(pilot)
        await open_draft(pilot, app, draft_id)
        await pilot.press("A")
        await settle(pilot)
        assert "owner alice" in text_of(app, "#ev-why")
        await pilot.press("P", "end", "enter")
        await settle(pilot)
        assert "priority low (alice)" in text_of(app, "#ev-why")
        await pilot.press("H", *"team:tech", "enter")
        await settle(pilot)
    final = ticket_of(db, draft_id)
    assert (final.owner, final.team, final.priority) == (None, "tech", "low")


async def test_merge_then_split_from_the_ticket_screen(db: Engine, make_app: AppFactory) -> None:
    first = desk_ticket(db, "gail", minutes_ago=30)
    second_ticket, second = add_ticket(
        db,
        sender="gail@customer.example",
        subject="the same problem, again",
        body="still broken",
        received_at=APP_NOW - timedelta(minutes=5),
    )
    first_ticket = ticket_of(db, first).id
    app = make_app("alice", desk=DESK)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_draft(pilot, app, first)
        await pilot.press("M")
        await pilot.pause()
        assert isinstance(app.screen, PromptScreen)
        await pilot.press(*"abc", "enter")
        await pilot.pause()
        assert "type the number" in text_of(app, "#prompt-error")
        await pilot.press("ctrl+u", *f"#{second_ticket}", "enter")
        await settle(pilot)
        assert f"ticket #{first_ticket} merged into #{second_ticket}" in notes(app)
        assert ticket_of(db, first).id == second_ticket  # the draft went along
        assert isinstance(app.screen, TicketScreen) and app.screen is screen
        assert screen.view is not None and screen.view.ticket.id == second_ticket
        # The screen now holds the ticket the draft went to, not a lost lease.
        assert screen.lost_to is None and screen.lease is not None and screen.lease.mine
        assert screen.lease.ticket_id == second_ticket
        assert ticket_of(db, first).lease_holder == "alice"
        await pilot.press("B", "y")
        await settle(pilot)
        assert screen.lease is not None and screen.lease.mine
        assert screen.lease.ticket_id not in (first_ticket, second_ticket)
    split_off = ticket_of(db, first)  # (one session at a time: each takes the write lock)
    assert split_off.id not in (first_ticket, second_ticket)
    assert split_off.linked_ticket == second_ticket
    with Session(db) as session:
        merged = session.get(Ticket, first_ticket)
        assert merged is not None and merged.status == "merged"
        assert merged.linked_ticket == second_ticket and merged.lease_holder is None
        left_behind = session.get(Ticket, second_ticket)
        assert left_behind is not None and left_behind.lease_holder is None
        left = session.exec(select(Message).where(Message.ticket_id == second_ticket)).all()
        assert [m.subject for m in left] == ["the same problem, again"]
    assert ticket_of(db, second).id == second_ticket
    assert f"split off as ticket #{split_off.id}" in notes(app)


async def test_desk_keys_are_off_while_editing_and_once_taken_over(
    db: Engine, make_app: AppFactory
) -> None:
    draft_id = desk_ticket(db, "hana", team="billing")
    app = make_app("alice", desk=DESK)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        ticket = await open_draft(pilot, app, draft_id)
        await pilot.press("e", *"Solved? ")  # S and C type into the draft
        await pilot.pause()
        assert ticket.editing
        assert ticket_of(db, draft_id).status == "open"
        await pilot.press("escape")
        await settle(pilot)
        rv.take_over(engine=db, ticket_id=ticket_of(db, draft_id).id or 0, actor="bob")
        ticket.renew_lease()
        await settle(pilot)
        assert not {"status('solved')", "take", "merge"} & footer_keys(app)
        await pilot.press("S")
        await settle(pilot)
        assert ticket_of(db, draft_id).status == "open"
