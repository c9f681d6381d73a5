"""The review app on PostgreSQL: the same rep actions, against a real server.

A team moves to PostgreSQL when it outgrows one machine, and the app reads it through a
read-only REPEATABLE READ engine rather than SQLite's WAL snapshot, so the main paths
(queue, ticket, edit, release one, tag by pattern and bulk release, a second rep's
lease) run here too.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from review_tui.app import ReviewApp
from review_tui.screens.bulk import BulkReviewScreen
from review_tui.screens.queue import QueueScreen
from review_tui.screens.ticket import TicketScreen
from storage import review as rv
from storage.models import Draft, Outbox
from storage.seed import seed
from tests.review_tui.conftest import app_builder, settle
from tests.review_tui.test_app import open_draft, open_with_intent, text_of
from tests.support.postgres import pg_bindir

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(pg_bindir() is None, reason="PostgreSQL binaries are not installed"),
]


@pytest.fixture
def pg_app(pg_engine: Engine) -> Callable[..., ReviewApp]:
    return app_builder(pg_engine.url.render_as_string(hide_password=False))


def pending(engine: Engine) -> list[Outbox]:
    with Session(engine) as session:
        return list(session.exec(select(Outbox).where(Outbox.state == "pending")).all())


async def test_release_one_and_bulk_release_on_postgres(
    pg_engine: Engine, pg_app: Callable[..., ReviewApp]
) -> None:
    seeded = seed(pg_engine, count=30)
    outage = open_with_intent(pg_engine, "outage_report")
    with Session(pg_engine) as session:
        releasable = [
            d
            for d in seeded.draft_ids
            if d not in outage and not rv.release_problems(session.get(Draft, d))  # type: ignore[arg-type]
        ]
    app = pg_app()
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        assert "showing 30 of 30" in text_of(app, "#queue-status")
        ticket = await open_draft(pilot, app, releasable[0])
        assert isinstance(ticket, TicketScreen)
        await pilot.press("r", "y")
        await settle(pilot)
        assert isinstance(app.screen, QueueScreen)
        assert "of 29" in text_of(app, "#queue-status")
        await pilot.press("T", "ctrl+u", *"intent:outage_report", "enter")
        await settle(pilot)
        queue = app.screen
        assert isinstance(queue, QueueScreen) and sorted(queue.tagged) == outage
        await pilot.press("R")
        await settle(pilot)
        bulk = app.screen
        assert isinstance(bulk, BulkReviewScreen)
        eligible = sorted(c.draft_id for c in bulk.eligible)
        await pilot.press(*str(len(eligible)), "enter")
        await settle(pilot)
    rows = pending(pg_engine)
    assert sorted(r.draft_id or 0 for r in rows) == sorted([releasable[0], *eligible])
    assert {r.released_by for r in rows} == {"alice"}


async def test_second_rep_sees_the_lease_on_postgres(
    pg_engine: Engine, pg_app: Callable[..., ReviewApp]
) -> None:
    seed(pg_engine, count=10)
    alice, bob = pg_app("alice"), pg_app("bob")
    async with alice.run_test(size=(140, 45)) as apilot:
        await settle(apilot)
        assert isinstance(alice.screen, QueueScreen)
        draft_id = alice.screen.rows[0].draft_id
        await open_draft(apilot, alice, draft_id)
        async with bob.run_test(size=(140, 45)) as bpilot:
            await settle(bpilot)
            bqueue = bob.screen
            assert isinstance(bqueue, QueueScreen)
            assert next(r for r in bqueue.rows if r.draft_id == draft_id).lease_holder == "alice"
            await open_draft(bpilot, bob, draft_id)
            assert "Being worked on by alice" in text_of(bob, "#lease-banner")
            await bpilot.press("r", "y")
            await settle(bpilot)
            assert pending(pg_engine) == []
            await bpilot.press("o", "y")
            await settle(bpilot)
            await bpilot.press("r", "y")
            await settle(bpilot)
    rows = pending(pg_engine)
    assert len(rows) == 1 and rows[0].released_by == "bob" and rows[0].draft_id == draft_id
