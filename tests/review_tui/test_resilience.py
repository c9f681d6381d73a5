"""The app when the database misbehaves: it says so once and does not spin."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from textual.widgets import TextArea

from review_tui.app import ReviewApp
from review_tui.screens.queue import QueueScreen
from storage import review as rv
from storage.db import session_scope
from storage.models import Draft
from storage.seed import SeedResult
from tests.review_tui.conftest import notes, settle
from tests.review_tui.test_app import open_draft


async def test_a_failing_queue_read_is_reported_once_not_retried_in_a_loop(
    seeded: SeedResult, make_app: Callable[..., ReviewApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def unreachable(**kwargs: Any) -> list[rv.QueueRow]:
        calls.append(1)
        raise OSError("database is unreachable")

    monkeypatch.setattr(rv, "page_queue", unreachable)
    app = make_app()
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot, rounds=8)
        assert isinstance(app.screen, QueueScreen)
        assert len(calls) == 1
        assert any("could not load the queue: database is unreachable" in n for n in notes(app))


async def test_an_older_ticket_load_finishing_last_does_not_put_old_text_back(
    db: Engine,
    seeded: SeedResult,
    make_app: Callable[..., ReviewApp],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    draft_id = seeded.draft_ids[1]
    app = make_app()
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        ticket = await open_draft(pilot, app, draft_id)
        real_load = rv.load_ticket
        first, finished = threading.Event(), threading.Event()

        def slow_first(**kwargs: Any) -> rv.TicketView:
            view = real_load(**kwargs)
            if not first.is_set():
                first.set()
                time.sleep(0.5)  # read before the other rep saved; arrives last
                finished.set()
            return view

        monkeypatch.setattr(rv, "load_ticket", slow_first)
        ticket.load()
        await asyncio.to_thread(first.wait, 5)
        with session_scope(db) as session:
            current = session.get(Draft, draft_id)
            assert current is not None
            rv.save_draft(
                session=session,
                draft_id=draft_id,
                body="Newer text from bob.",
                expected_version=current.version,
                actor="bob",
                unfilled=[],
            )
        ticket.load()
        await asyncio.to_thread(finished.wait, 5)
        await settle(pilot, rounds=6)
        assert ticket.query_one("#draft", TextArea).text == "Newer text from bob."
