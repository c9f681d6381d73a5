"""A rep's day on the queue: new mail marked, newest first remembered, safe quitting,
releases checked before they are offered, and suppressed mail within reach."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from review_tui.prefs import QueuePrefs, load_prefs, save_prefs
from review_tui.screens.dialogs import ConfirmScreen
from review_tui.screens.help import HelpScreen
from review_tui.screens.problems import ProblemsScreen
from review_tui.screens.queue import QueueScreen
from review_tui.widgets.queue_table import QueueTable
from storage import review as rv
from storage.db import session_scope
from storage.models import Message, MessageState, RawMessage
from storage.seed import FIXED_NOW, SeedResult, add_ticket
from tests.review_tui.conftest import notes, settle
from tests.review_tui.test_app import AppFactory, draft, outbox, screen_text, text_of


def queue_of(app: object) -> QueueScreen:
    screen = app.screen  # type: ignore[attr-defined]
    assert isinstance(screen, QueueScreen)
    return screen


async def put_cursor_on(pilot: object, queue: QueueScreen, draft_id: int) -> None:
    table = queue.query_one(QueueTable)
    table.move_cursor(row=table.get_row_index(str(draft_id)))
    await pilot.pause()  # type: ignore[attr-defined]


async def test_new_rows_are_marked_and_newest_first_is_remembered(
    db: Engine, seeded: SeedResult, make_app: AppFactory, prefs_path: Path
) -> None:
    last_visit = FIXED_NOW - timedelta(minutes=30)
    save_prefs(prefs_path, "alice", QueuePrefs(last_seen=last_visit))
    _, fresh = add_ticket(
        db, sender="new@customer.example", subject="Fresh", body="hi", received_at=FIXED_NOW
    )
    app = make_app()
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        queue = queue_of(app)
        marked = {r.draft_id for r in queue.rows if queue.is_new(r)}
        expected = {r.draft_id for r in queue.rows if r.received_at > last_visit}
        assert fresh in marked and marked == expected and len(marked) < len(queue.rows)
        assert f"{len(marked)} new" in text_of(app, "#queue-status")
        assert "new" in screen_text(app)
        assert queue.rows[0].draft_id != fresh  # oldest first by default
        await pilot.press("N")
        await settle(pilot)
        assert queue.rows[0].draft_id == fresh and "newest first" in text_of(app, "#queue-status")
        await put_cursor_on(pilot, queue, fresh)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("q")
        await settle(pilot)
        assert not queue.is_new(queue.rows[0])  # opened: no longer new
    saved = load_prefs(prefs_path, "alice")
    assert (saved.flt.sort, saved.flt.descending) == ("age", True)
    again = make_app()
    async with again.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        queue = queue_of(again)
        assert queue.flt.descending and queue.rows[0].draft_id == fresh
        assert not any(queue.is_new(r) for r in queue.rows)  # all seen on the last visit
    other = make_app("bob")
    async with other.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        assert not queue_of(other).flt.descending  # each rep has their own


async def test_filter_is_remembered_across_restarts(
    seeded: SeedResult, make_app: AppFactory
) -> None:
    app = make_app()
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        await pilot.press("f", "ctrl+u", *"intent:billing", "enter")
        await settle(pilot)
    again = make_app()
    async with again.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        queue = queue_of(again)
        assert queue.flt.intents == ("billing",)
        assert {r.intent for r in queue.rows} == {"billing"}


async def test_quit_with_tags_asks_first(seeded: SeedResult, make_app: AppFactory) -> None:
    app = make_app()
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        footer = screen_text(app)
        assert "enter Open" in footer and "u Clear tags" in footer
        await pilot.press("t", "t", "q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert "2 tagged drafts will be forgotten" in screen_text(app)
        await pilot.press("n")
        await settle(pilot)
        assert app.is_running and len(queue_of(app).tagged) == 2
        await pilot.press("q", "y")
        await pilot.pause()
    assert not app.is_running


async def test_help_has_a_human_title(seeded: SeedResult, make_app: AppFactory) -> None:
    app = make_app()
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        shown = screen_text(app)
        assert "Keys — the queue" in shown and "QueueScreen" not in shown


async def test_release_is_checked_before_the_confirmation_which_shows_the_body(
    db: Engine, seeded: SeedResult, make_app: AppFactory
) -> None:
    unfilled = next(
        i
        for i in seeded.draft_ids
        if any("unfilled" in p for p in rv.release_problems(draft(db, i)))
    )
    ready = next(i for i in seeded.draft_ids if not rv.release_problems(draft(db, i)))
    app = make_app()
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        queue = queue_of(app)
        await put_cursor_on(pilot, queue, unfilled)
        await pilot.press("r")
        await settle(pilot)
        assert app.screen is queue  # refused, no confirmation offered
        assert any("cannot release" in n and "unfilled placeholders" in n for n in notes(app))
        await put_cursor_on(pilot, queue, ready)
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        shown = screen_text(app)
        body = draft(db, ready)
        first_line = body.body.strip().splitlines()[0]
        assert body.to_addr in shown and f"│ {first_line}" in shown
        await pilot.press("y")
        await settle(pilot)
    rows = outbox(db)
    assert [r.draft_id for r in rows] == [ready]


def add_suppressed(db: Engine, reason: str) -> int:
    raw = b"Subject: Out of office\r\n\r\nI am away until Monday."
    sha = hashlib.sha256(raw).hexdigest()
    with session_scope(db) as session:
        session.add(RawMessage(sha256=sha, size=len(raw), data=raw))
        session.flush()
        msg = Message(
            dedupe_key=f"sha:{sha}",
            sha256=sha,
            size=len(raw),
            source="seed",
            from_addr="away@customer.example",
            subject="Out of office \u202eRe: help",
            received_at=FIXED_NOW - timedelta(minutes=5),
            state=MessageState.SUPPRESSED,
            suppression_reason=reason,
        )
        session.add(msg)
        session.flush()
        return int(msg.id or 0)


async def test_suppressed_mail_is_reachable_with_its_reason(
    db: Engine, seeded: SeedResult, make_app: AppFactory
) -> None:
    message_id = add_suppressed(db, "auto-reply: Auto-Submitted: auto-replied")
    app = make_app()
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        assert "1 suppressed (s)" in text_of(app, "#queue-status")
        await pilot.press("f", "ctrl+u", *"state:suppressed", "enter")
        await settle(pilot)
        problems = app.screen
        assert isinstance(problems, ProblemsScreen)
        assert [(p.kind, p.id) for p in problems.problem_rows] == [("suppressed", message_id)]
        shown = screen_text(app)
        assert "auto-reply: Auto-Submitted: auto-replied" in shown
        assert "Out of office <U+202E>Re: help" in shown
        await pilot.press("f")  # everything again: shunted and failed too
        await settle(pilot)
        assert {p.kind for p in problems.problem_rows} == {"suppressed", "shunted", "failed"}
        await pilot.press("f", "r")
        await pilot.pause()
        assert "It was held back as: auto-reply" in screen_text(app)
        await pilot.press("y")
        await settle(pilot)
    with Session(db) as session:
        message = session.get(Message, message_id)
        assert message is not None and message.state == "received"


async def test_a_narrower_terminal_drops_bucket_held_by_priority_and_owner_first(
    seeded: SeedResult, make_app: AppFactory
) -> None:
    app = make_app()
    async with app.run_test(size=(180, 40)) as pilot:
        await settle(pilot)
        table = queue_of(app).query_one(QueueTable)
        wide = {"bucket", "holder", "priority", "owner", "due", "state"}
        assert wide <= {k for k, _, _ in table.columns_shown}
        await pilot.resize_terminal(100, 30)
        await settle(pilot)
        keys = set(k for k, _, _ in table.columns_shown)
        assert not {"bucket", "holder", "priority", "owner"} & keys
        assert {"due", "state"} <= keys
        assert table.row_count == 40 and "drafted" in screen_text(app)
