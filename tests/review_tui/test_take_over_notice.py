"""A rep whose ticket is taken over is told at once and her screen turns read-only; her
app never takes the lease back on its own. A ticket answered since its draft asks again."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session
from textual.widgets import TextArea

from review_tui.screens.dialogs import ConfirmScreen
from review_tui.screens.queue import QueueScreen
from storage import review as rv
from storage.db import session_scope
from storage.models import Draft, Ticket
from storage.seed import SeedResult
from tests.review_tui.conftest import notes, settle
from tests.review_tui.test_app import AppFactory, draft, open_draft, outbox, screen_text, text_of
from tests.review_tui.test_workday_ticket import footer_keys

FROM = "support@help.example.org"


def holder(engine: Engine, ticket_id: int) -> str | None:
    with Session(engine) as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        return ticket.lease_holder


async def test_taken_over_ticket_turns_read_only_and_is_not_retaken(
    db: Engine, seeded: SeedResult, make_app: AppFactory
) -> None:
    draft_id = seeded.draft_ids[0]
    ticket_id = draft(db, draft_id).ticket_id
    app = make_app("alice")
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        ticket = await open_draft(pilot, app, draft_id)
        await pilot.press("e", *"Hold on: ")
        await pilot.pause()
        assert ticket.editing and ticket.lease is not None and ticket.lease.mine

        rv.take_over(engine=db, ticket_id=ticket_id, actor="bob")
        ticket.renew_lease()  # what the refresh timer runs
        await settle(pilot)
        assert any("bob, who took it over from you" in n for n in notes(app))
        assert "Being worked on by bob" in text_of(app, "#lease-banner")
        assert "read-only" in text_of(app, "#lease-banner")
        editor = ticket.query_one("#draft", TextArea)
        assert not ticket.editing and editor.read_only
        assert editor.text.startswith("Hold on: ")  # unsaved text stays to copy
        assert not {"edit", "save", "release", "discard"} & footer_keys(app)

        # Bob leaves: the lease is free, but alice's renewals and reloads do not retake it.
        rv.release_lease(engine=db, ticket_id=ticket_id, actor="bob")
        ticket.renewed_at = 0.0  # a renewal is due
        ticket.renew_lease()
        await settle(pilot)
        ticket.load()
        await settle(pilot)
        assert holder(db, ticket_id) is None
        assert ticket.lost_to == "bob" and not ticket.lease.mine

        # Taking it back is an explicit act.
        await pilot.press("o")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(pilot)
        assert holder(db, ticket_id) == "alice"
        assert ticket.lost_to is None and ticket.lease.mine
        assert "release" in footer_keys(app)


async def test_release_on_an_answered_ticket_asks_a_second_time(
    db: Engine, seeded: SeedResult, make_app: AppFactory
) -> None:
    draft_id = seeded.draft_ids[0]
    first = draft(db, draft_id)
    with session_scope(db) as session:
        other = Draft(
            ticket_id=first.ticket_id,
            message_pk=first.message_pk,
            to_addr=first.to_addr,
            subject=first.subject,
            body="Hi,\n\nfixed.",
        )
        session.add(other)
        session.flush()
        other_id = int(other.id or 0)
    rv.release(engine=db, draft_ids=[other_id], actor="bob", from_address=FROM)
    app = make_app("alice")
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        await open_draft(pilot, app, draft_id)
        await pilot.press("r", "y")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        assert "already answered" in screen_text(app) and "bob" in screen_text(app)
        await pilot.press("n")
        await settle(pilot)
        assert len(outbox(db)) == 1
        await pilot.press("r", "y")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert isinstance(app.screen, QueueScreen)
    assert len(outbox(db)) == 2 and draft(db, draft_id).state == "approved"
