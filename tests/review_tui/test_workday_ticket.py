"""A rep's day in a ticket: reading versus editing, the whole thread with our replies,
who set the label, hostile bidi text, and a draft that goes to a Reply-To address."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session
from textual.widgets import Static

from review_tui.screens.dialogs import ConfirmScreen
from review_tui.screens.ticket import TicketScreen
from storage.db import session_scope
from storage.models import Draft, Outbox
from storage.seed import FIXED_NOW, SeedResult, add_ticket
from tests.review_tui.conftest import settle
from tests.review_tui.test_app import (
    AppFactory,
    draft,
    open_draft,
    outbox,
    screen_text,
    text_of,
)


def footer_keys(app: object) -> set[str]:
    screen = app.screen  # type: ignore[attr-defined]
    return {
        b.binding.action
        for b in screen.active_bindings.values()
        if b.binding.show and b.enabled and b.node is screen
    }


async def test_footer_and_mode_follow_reading_and_editing(
    db: Engine, seeded: SeedResult, make_app: AppFactory
) -> None:
    draft_id = seeded.draft_ids[0]
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        ticket = await open_draft(pilot, app, draft_id)
        reading = footer_keys(app)
        assert "save" not in reading and "leave_editor" not in reading and "release" in reading
        await pilot.press("e")
        await pilot.pause()
        editing = footer_keys(app)
        assert editing == {"save", "leave_editor"}
        await pilot.press(*"Note: ", "escape")
        await pilot.pause()
        assert not ticket.editing and "READING" in text_of(app, "#draft-head")
        assert "unsaved" in text_of(app, "#draft-head") and "save" in footer_keys(app)
        await pilot.press("q")  # unsaved edits: leaving asks first
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert "Leave without saving?" in screen_text(app)
        await pilot.press("n")
        await pilot.pause()
        assert app.screen is ticket
        await pilot.press("q", "y")
        await settle(pilot)
        assert not isinstance(app.screen, TicketScreen)
    assert not draft(db, draft_id).body.startswith("Note: ")


async def test_our_released_replies_are_in_the_thread_with_their_state(
    db: Engine, seeded: SeedResult, make_app: AppFactory
) -> None:
    target = draft(db, seeded.draft_ids[4])
    with Session(db) as session:
        from storage.models import Message

        first = session.get(Message, target.message_pk)
        assert first is not None
        asked_at = first.received_at
    with session_scope(db) as session:
        for n, (state, who) in enumerate((("sent", "bob"), ("failed", "carol"))):
            session.add(
                Outbox(
                    ticket_id=target.ticket_id,
                    state=state,
                    message_id=f"<sg-earlier{n}@help.example.org>",
                    to_addrs=[target.to_addr],
                    subject=f"Re: earlier [#{target.ticket_id}]",
                    body=f"Our answer number {n}.",
                    released_by=who,
                    released_at=asked_at + timedelta(minutes=10 * (n + 1)),
                    sent_at=asked_at + timedelta(minutes=11) if state == "sent" else None,
                )
            )
    app = make_app()
    async with app.run_test(size=(140, 60)) as pilot:
        await settle(pilot)
        ticket = await open_draft(pilot, app, int(target.id or 0))
        assert ticket.view is not None
        items = ticket.view.conversation
        assert [i.received_at for i in items] == sorted(i.received_at for i in items)
        ours = [i for i in items if i.ours]
        assert [(i.state, i.released_by) for i in ours] == [("sent", "bob"), ("failed", "carol")]
        shown = "\n".join(str(m.content) for m in ticket.query(".message").results(Static))
        assert "OUR REPLY" in shown and "released by bob · sent" in shown
        assert "released by carol · failed" in shown and "Our answer number 0." in shown
        assert shown.index("Our answer number 0.") < shown.index("Our answer number 1.")
        assert "OUR REPLY" in screen_text(app)


async def test_header_says_who_set_the_label(
    db: Engine, seeded: SeedResult, make_app: AppFactory
) -> None:
    draft_id = seeded.draft_ids[0]
    app = make_app()
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        ticket = await open_draft(pilot, app, draft_id)
        assert "0.84" in text_of(app, "#ticket-head")
        intents = list(app.settings.intents)
        steps = intents.index("billing") - intents.index(draft(db, draft_id).intent or "")
        keys = ["down"] * steps if steps > 0 else ["up"] * -steps
        await pilot.press("i", *keys, "enter")
        await settle(pilot)
        head = text_of(app, "#ticket-head")
        assert "billing set by alice" in head and "0.84" not in head
        assert ticket.view is not None and ticket.view.label_set_by == "alice"


async def test_bidi_controls_show_as_escapes_everywhere(db: Engine, make_app: AppFactory) -> None:
    _, draft_id = add_ticket(
        db,
        sender="mallory@evil.example",
        subject="Invoice \u202egpj.exe",
        body="Please open \u2066report\u2069 and \u200fpay\u200e now \u061c.",
        reply="Hello,\n\nabout \u202eyour invoice.\n\nBest regards",
        received_at=FIXED_NOW,
    )
    app = make_app()
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        assert "Invoice <U+202E>gpj.exe" in screen_text(app)
        await open_draft(pilot, app, draft_id)
        shown = screen_text(app)
        assert "Please open <U+2066>report<U+2069> and <U+200F>pay<U+200E> now <U+061C>." in shown
        assert "Invoice <U+202E>gpj.exe" in text_of(app, "#ticket-head")
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        dialog = screen_text(app)
        assert "about <U+202E>your invoice." in dialog
        svg = app.export_screenshot()
        for ch in "\u202e\u2066\u2069\u200e\u200f\u061c":
            assert ch not in svg


async def test_reply_to_recipient_is_named_in_header_and_release(
    db: Engine, make_app: AppFactory
) -> None:
    _, draft_id = add_ticket(
        db,
        sender="ceo@customer.example",
        subject="Please help",
        body="Reply to my assistant please.",
        received_at=FIXED_NOW,
    )
    with session_scope(db) as session:
        row = session.get(Draft, draft_id)
        assert row is not None
        row.to_addr = "assistant@elsewhere.example"
        session.add(row)
    app = make_app()
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        await open_draft(pilot, app, draft_id)
        head = text_of(app, "#ticket-head")
        assert "<ceo@customer.example>" in head
        assert "Reply-To assistant@elsewhere.example — the draft goes there" in head
        await pilot.press("r")
        await pilot.pause()
        dialog = screen_text(app)
        assert "To:      assistant@elsewhere.example" in dialog
        assert "from the Reply-To header; the mail came from ceo@customer.example" in dialog
        await pilot.press("y")
        await settle(pilot)
    assert [r.to_addrs for r in outbox(db)] == [["assistant@elsewhere.example"]]
