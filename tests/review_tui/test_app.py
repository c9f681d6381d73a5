"""Pilot tests: a rep drives the real app against a real seeded SQLite database."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from textual.widgets import Input, Static, TextArea

from review_tui.app import ReviewApp
from review_tui.screens.bulk import BulkReviewScreen
from review_tui.screens.dialogs import ChoiceScreen, ConfirmScreen, ConflictScreen, PromptScreen
from review_tui.screens.help import HelpScreen
from review_tui.screens.problems import ProblemsScreen
from review_tui.screens.queue import QueueScreen
from review_tui.screens.ticket import TicketScreen
from review_tui.widgets.queue_table import QueueTable
from storage import review as rv
from storage.models import AuditLog, Draft, LabelCorrection, Message, Outbox
from storage.seed import FIXED_NOW, SeedResult, add_ticket
from tests.review_tui.conftest import notes, settle

AppFactory = Callable[..., ReviewApp]


def text_of(app: ReviewApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).content)


def outbox(engine: Engine) -> list[Outbox]:
    with Session(engine) as session:
        return list(session.exec(select(Outbox).where(Outbox.state == "pending")).all())


def draft(engine: Engine, draft_id: int) -> Draft:
    with Session(engine) as session:
        row = session.get(Draft, draft_id)
        assert row is not None
        return row


def open_with_intent(engine: Engine, intent: str) -> list[int]:
    """Ids of the open drafts labelled `intent`, ascending."""
    with Session(engine) as session:
        query = select(Draft).where(Draft.intent == intent, col(Draft.state).in_(rv.OPEN_STATES))
        return sorted(int(d.id or 0) for d in session.exec(query).all())


def screen_text(app: ReviewApp) -> str:
    svg = app.export_screenshot()
    parts = re.findall(r"<text [^>]*>(.*?)</text>", svg)
    return html.unescape("".join(re.sub("<[^>]+>", "", p) for p in parts)).replace("\xa0", " ")


async def open_draft(pilot: Any, app: ReviewApp, draft_id: int) -> TicketScreen:
    queue = app.screen
    assert isinstance(queue, QueueScreen)
    table = queue.query_one(QueueTable)
    table.move_cursor(row=table.get_row_index(str(draft_id)))
    await pilot.press("enter")
    await settle(pilot)
    assert isinstance(app.screen, TicketScreen)
    return app.screen


async def test_queue_pages_from_database(seeded: SeedResult, make_app: AppFactory) -> None:
    app = make_app(page_size=15)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, QueueScreen)
        assert screen.query_one(QueueTable).row_count == 15
        assert "showing 15 of 40" in text_of(app, "#queue-status")
        first_page = [r.draft_id for r in screen.rows]
        await pilot.press("n")
        await settle(pilot)
        assert "rows 16–30" in text_of(app, "#queue-status")
        assert not set(first_page) & {r.draft_id for r in screen.rows}
        presses = rv.SORT_KEYS.index("confidence") - rv.SORT_KEYS.index(screen.flt.sort)
        await pilot.press(*["o"] * presses, "O")  # sort by confidence, descending
        await settle(pilot)
        confs = [r.confidence or 0 for r in screen.rows]
        assert screen.flt.sort == "confidence" and confs == sorted(confs, reverse=True)


async def test_filter_and_search(seeded: SeedResult, make_app: AppFactory) -> None:
    app = make_app()
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, QueueScreen)
        await pilot.press("f")
        await pilot.press("ctrl+u", *"conf:2", "enter")
        await pilot.pause()
        assert isinstance(app.screen, PromptScreen)  # bad input: the prompt stays, says why
        assert "between 0 and 1" in text_of(app, "#prompt-error")
        await pilot.press("ctrl+u", *"intent:billing state:drafted", "enter")
        await settle(pilot)
        assert app.screen is screen
        assert {r.intent for r in screen.rows} == {"billing"}
        assert {r.state for r in screen.rows} == {"drafted"}
        assert "showing 4 of 4" in text_of(app, "#queue-status")
        await pilot.press("f", "ctrl+u", "enter", "slash", *"kanoo", "enter")
        await settle(pilot)
        assert screen.rows and all(r.sender.endswith("@kanoo.ng") for r in screen.rows)


async def test_open_edit_save(db: Engine, seeded: SeedResult, make_app: AppFactory) -> None:
    draft_id = seeded.draft_ids[0]
    app = make_app()
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        ticket = await open_draft(pilot, app, draft_id)
        assert "server.log" in screen_text(app) and "L1412" in screen_text(app)
        assert "READING" in text_of(app, "#draft-head")
        await pilot.press("e")
        assert "EDITING" in text_of(app, "#draft-head")
        editor = ticket.query_one("#draft", TextArea)
        assert editor.has_focus and editor.cursor_location == (0, 0)  # at the top
        await pilot.press(*"Thanks! ", "ctrl+s")
        await settle(pilot)
        saved = draft(db, draft_id)
        assert saved.body.startswith("Thanks! Hello")
        assert (saved.version, saved.updated_by) == (2, "alice")
        assert ticket.version == 2 and not ticket.is_dirty()
        # Saving went back to reading: keys act again instead of typing into the draft.
        assert not editor.has_focus and "READING" in text_of(app, "#draft-head")
        await pilot.press("i")
        await pilot.pause()
        assert isinstance(app.screen, ChoiceScreen)
        await pilot.press("escape")
        await settle(pilot)
    assert draft(db, draft_id).body == saved.body


async def test_release_one_writes_one_outbox_row(
    db: Engine, seeded: SeedResult, make_app: AppFactory
) -> None:
    draft_id = seeded.draft_ids[0]
    app = make_app()
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        await open_draft(pilot, app, draft_id)
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        confirm_text = screen_text(app)
        expected = draft(db, draft_id)
        assert expected.to_addr in confirm_text and expected.subject in confirm_text
        await pilot.press("n")  # any other key cancels
        await settle(pilot)
        assert outbox(db) == []
        await pilot.press("r", "y")
        await settle(pilot)
        assert isinstance(app.screen, QueueScreen)
    rows = outbox(db)
    assert len(rows) == 1 and rows[0].released_by == "alice" and rows[0].draft_id == draft_id
    assert draft(db, draft_id).state == "approved"
    with Session(db) as session:
        ticket = session.get(Draft, draft_id)
        assert ticket is not None
        audit = session.exec(select(AuditLog).where(AuditLog.action == "draft.released")).one()
    assert audit.actor == "alice" and audit.details["recipient"] == rows[0].to_addrs[0]


async def test_tag_by_pattern_and_bulk_release(
    db: Engine, seeded: SeedResult, make_app: AppFactory
) -> None:
    matching = open_with_intent(db, "outage_report")
    excluded = [i for i in matching if rv.release_problems(draft(db, i))]
    reasons = {draft(db, i).state == "stale" for i in excluded}
    assert reasons == {True, False}  # stale ones, and ones with unfilled placeholders
    app = make_app()
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        await pilot.press("T", "ctrl+u", *"intent:outage_report", "enter")
        await settle(pilot)
        queue = app.screen
        assert isinstance(queue, QueueScreen) and sorted(queue.tagged) == matching
        await pilot.press("R")
        await settle(pilot)
        bulk = app.screen
        assert isinstance(bulk, BulkReviewScreen)
        assert [c.draft_id for c in bulk.candidates] == matching
        assert [c.draft_id for c in bulk.candidates if not c.eligible] == excluded
        listing = screen_text(app)
        for c in bulk.candidates:
            assert c.to_addr in listing
        n = len(bulk.eligible)
        await pilot.press(*str(n - 1), "enter")  # wrong count: nothing is released
        await settle(pilot)
        assert app.screen is bulk and "nothing was released" in text_of(app, "#bulk-error")
        assert outbox(db) == []
        await pilot.press(*str(n), "enter")
        await settle(pilot)
        assert isinstance(app.screen, QueueScreen)
        assert app.screen.tagged == set(excluded)
    rows = outbox(db)
    assert sorted(r.draft_id or 0 for r in rows) == [i for i in matching if i not in excluded]
    assert len({r.bulk_id for r in rows}) == 1 and rows[0].bulk_id
    assert {r.released_by for r in rows} == {"alice"}


async def test_bulk_over_threshold_needs_ops(
    db: Engine, seeded: SeedResult, make_app: AppFactory
) -> None:
    app = make_app(bulk_ops_threshold=2, ops=("carol",))
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        await pilot.press("t", "t", "t", "R")
        await settle(pilot)
        assert "needs the ops role (you do not have it)" in text_of(app, "#bulk-summary")
        await pilot.press("3", "enter")
        await settle(pilot)
        assert "needs the ops role" in text_of(app, "#bulk-error")
    assert outbox(db) == []


async def test_hostile_customer_text_renders_literally(db: Engine, make_app: AppFactory) -> None:
    body = "Hi [bold red]x[/] and [@click=app.quit]click[/] then \x1b[2J\x1b]0;pwned\x07 end"
    _, draft_id = add_ticket(
        db,
        sender="mallory@evil.example",
        subject="[reverse]Urgent[/] \x1b[31mred",
        body=body,
        received_at=FIXED_NOW,
    )
    app = make_app()
    async with app.run_test(size=(180, 45)) as pilot:
        await settle(pilot)
        queue_text = screen_text(app)
        assert "[reverse]Urgent[/] ␛[31mred" in queue_text
        await open_draft(pilot, app, draft_id)
        shown = screen_text(app)
        assert "Hi [bold red]x[/] and [@click=app.quit]click[/] then ␛[2J␛]0;pwned␇ end" in shown
        assert "\x1b" not in app.export_screenshot()
        await pilot.click("#conversation", offset=(20, 5))
        await settle(pilot)
        assert app.is_running and isinstance(app.screen, TicketScreen)


async def test_second_rep_sees_lease_and_must_take_over(
    db: Engine, seeded: SeedResult, make_app: AppFactory
) -> None:
    alice, bob = make_app("alice"), make_app("bob")
    # Wide enough for the Held by column, which narrower terminals drop.
    async with alice.run_test(size=(170, 45)) as apilot:
        await settle(apilot)
        assert isinstance(alice.screen, QueueScreen)
        draft_id = alice.screen.rows[0].draft_id  # the top of the queue
        await open_draft(apilot, alice, draft_id)
        async with bob.run_test(size=(170, 45)) as bpilot:
            await settle(bpilot)
            bqueue = bob.screen
            assert isinstance(bqueue, QueueScreen)
            assert next(r for r in bqueue.rows if r.draft_id == draft_id).lease_holder == "alice"
            assert "alice" in screen_text(bob)
            bticket = await open_draft(bpilot, bob, draft_id)
            assert "Being worked on by alice" in text_of(bob, "#lease-banner")
            await bpilot.press("r", "y")
            await settle(bpilot)
            assert outbox(db) == []
            assert any("being worked on by alice" in n for n in notes(bob))
            await bpilot.press("o", "y")
            await settle(bpilot)
            assert bticket.lease is not None and bticket.lease.mine
            await bpilot.press("r", "y")
            await settle(bpilot)
    rows = outbox(db)
    assert len(rows) == 1 and rows[0].released_by == "bob"


async def test_concurrent_edit_is_detected(
    db: Engine, seeded: SeedResult, make_app: AppFactory
) -> None:
    draft_id = seeded.draft_ids[2]
    alice, bob = make_app("alice"), make_app("bob")
    async with alice.run_test(size=(140, 45)) as apilot:
        await settle(apilot)
        await open_draft(apilot, alice, draft_id)
        await apilot.press("e", *"(alice) ")
        async with bob.run_test(size=(140, 45)) as bpilot:
            await settle(bpilot)
            await open_draft(bpilot, bob, draft_id)
            await bpilot.press("e", *"(bob) ", "ctrl+s")
            await settle(bpilot)
        assert draft(db, draft_id).body.startswith("(bob) ")
        await apilot.press("ctrl+s")
        await settle(apilot)
        assert isinstance(alice.screen, ConflictScreen)
        both = screen_text(alice)
        assert "(bob)" in both and "(alice)" in both and "bob changed this draft" in both
        await apilot.press("m")
        await settle(apilot)
    saved = draft(db, draft_id)
    assert saved.body.startswith("(alice) Hello") and "(bob)" not in saved.body
    assert saved.version == 3 and saved.updated_by == "alice"


async def test_relabel_and_discard_from_queue(
    db: Engine, seeded: SeedResult, make_app: AppFactory
) -> None:
    app = make_app()
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        queue = app.screen
        assert isinstance(queue, QueueScreen)
        first = queue.rows[0]
        intents = list(app.settings.intents)
        steps = intents.index("billing") - intents.index(first.intent or "")
        await pilot.press("i", *(["down"] * steps if steps > 0 else ["up"] * -steps), "enter")
        await settle(pilot)
        await pilot.press("j", "d", "y")
        await settle(pilot)
        second = queue.rows[1] if queue.rows[0].draft_id == first.draft_id else queue.rows[0]
    with Session(db) as session:
        corr = session.exec(select(LabelCorrection)).one()
    assert (corr.old_label, corr.new_label, corr.actor) == (first.intent, "billing", "alice")
    assert draft(db, first.draft_id).intent == "billing"
    discarded = [i for i in seeded.draft_ids if draft(db, i).state == "discarded"]
    assert len(discarded) == 1 and discarded[0] != first.draft_id
    assert second.draft_id != discarded[0]


async def test_problems_are_visible_and_retryable(
    db: Engine, seeded: SeedResult, make_app: AppFactory
) -> None:
    app = make_app()
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        assert "3 shunted/failed (s)" in text_of(app, "#queue-status")
        await pilot.press("s")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ProblemsScreen)
        listing = screen_text(app)
        assert "550 5.1.1 mailbox unavailable" in listing and "ParseError" in listing
        kinds = [p.kind for p in screen.problem_rows]
        target = screen.problem_rows[0]
        await pilot.press("r", "y")
        await settle(pilot)
        assert len(screen.problem_rows) == 2
    assert sorted(kinds) == ["failed", "shunted", "shunted"]
    with Session(db) as session:
        if target.kind == "shunted":
            message = session.get(Message, target.id)
            assert message is not None and message.state == "received"
        else:
            row = session.get(Outbox, target.id)
            assert row is not None and row.state == "pending"


async def test_new_mail_appears_without_restart(
    db: Engine, seeded: SeedResult, make_app: AppFactory
) -> None:
    app = make_app(refresh_seconds=0.1)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        assert "of 40" in text_of(app, "#queue-status")
        add_ticket(
            db,
            sender="new@customer.example",
            subject="Fresh one",
            body="hi",
            received_at=FIXED_NOW - timedelta(days=30),
        )
        for _ in range(100):
            await pilot.pause(0.1)
            if "of 41" in text_of(app, "#queue-status"):
                break
        assert "of 41" in text_of(app, "#queue-status")
        assert "Fresh one" in {r.subject for r in app.screen.rows}  # type: ignore[attr-defined]


async def test_help_lists_keys(seeded: SeedResult, make_app: AppFactory) -> None:
    app = make_app()
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        shown = screen_text(app)
        for words in ("Tag pattern", "Release tagged", "Shunted/failed", "Search", "Filter"):
            assert words in shown
        await pilot.press("escape", "q")
        await pilot.pause()
    assert not app.is_running


async def test_typed_count_input_rejects_words(seeded: SeedResult, make_app: AppFactory) -> None:
    app = make_app()
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        await pilot.press("t", "R")
        await settle(pilot)
        await pilot.press(*"yes", "enter")
        await settle(pilot)
        assert isinstance(app.screen, BulkReviewScreen)
        assert "type the number of messages (1)" in text_of(app, "#bulk-error")
        assert app.screen.query_one(Input).disabled is False


async def test_open_ticket_notices_a_take_over(
    db: Engine, seeded: SeedResult, make_app: AppFactory
) -> None:
    draft_id = seeded.draft_ids[0]
    app = make_app("alice")
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        ticket = await open_draft(pilot, app, draft_id)
        assert ticket.lease is not None and ticket.lease.mine
        rv.take_over(engine=db, ticket_id=draft(db, draft_id).ticket_id, actor="bob")
        ticket.renew_lease()
        await settle(pilot)
        assert "Being worked on by bob" in text_of(app, "#lease-banner")
        await pilot.press("r", "y")
        await settle(pilot)
        assert any("being worked on by bob" in n for n in notes(app))
    assert outbox(db) == []


async def test_command_palette_offers_the_screen_actions(
    seeded: SeedResult, make_app: AppFactory
) -> None:
    app = make_app()
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Release tagged", "Tag pattern", "Filter", "Shunted/failed"} <= titles
        command = next(c for c in app.get_system_commands(app.screen) if c.title == "Tag")
        await command.callback()  # type: ignore[misc]
        await settle(pilot)
        queue = app.screen
        assert isinstance(queue, QueueScreen) and len(queue.tagged) == 1


def test_run_refuses_an_anonymous_rep(db_url: str) -> None:
    import review_tui

    with pytest.raises(ValueError, match="needs a rep name"):
        review_tui.run(db_url, actor=" ", ops=[])
    with pytest.raises(ValueError, match="at least 1"):
        review_tui.run(db_url, actor="alice", ops=[], page_size=0)
