"""SVG snapshots of the main screens on a deterministic seeded database.

The app's clock is injected (ages are relative to a fixed instant), the seed is fixed,
and the terminal size is fixed, so the pictures only change when the UI does.
Update with `pytest tests/review_tui/test_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from textual.pilot import Pilot

from review_tui.prefs import QueuePrefs, save_prefs
from review_tui.screens.queue import QueueScreen
from review_tui.widgets.queue_table import QueueTable
from storage.db import session_scope
from storage.models import Draft, Ticket
from storage.review import QueueFilter
from storage.seed import FIXED_NOW, SeedResult
from tests.review_tui.conftest import APP_NOW, settle
from tests.review_tui.test_app import AppFactory
from tests.review_tui.test_brief_panel import BRIEF

SIZE = (140, 42)
# The sizes reps work at: a comfortable terminal, and a small one where columns give way.
SIZES = pytest.mark.parametrize("size", [(120, 40), (100, 30)], ids=["120x40", "100x30"])


@SIZES
def test_queue_screen(
    db: Engine,
    seeded: SeedResult,
    make_app: AppFactory,
    snap_compare: Any,
    size: tuple[int, int],
    prefs_path: Path,
) -> None:
    # The newest tickets owe replies, two of them late; a few are alice's.
    with session_scope(db) as session:
        for n, draft_id in enumerate(seeded.draft_ids[:8]):
            row = session.get(Draft, draft_id)
            ticket = session.get(Ticket, row.ticket_id if row else 0)
            assert ticket is not None
            ticket.reply_due = APP_NOW + timedelta(minutes=53 * n - 95)
            ticket.owner, ticket.team = ("alice" if n % 3 == 0 else None), "billing"
            ticket.priority = ("urgent", "high", "normal", "low")[n % 4]
            session.add(ticket)
    # The rep sorted newest first last time, and last looked two hours before the seed's now.
    flt = QueueFilter(view="mine", sort="age", descending=True)
    save_prefs(prefs_path, "alice", QueuePrefs(flt=flt, last_seen=FIXED_NOW - timedelta(hours=2)))

    async def ready(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("t", "t")

    assert snap_compare(make_app(), terminal_size=size, run_before=ready)


@SIZES
def test_ticket_screen(
    db: Engine,
    seeded: SeedResult,
    make_app: AppFactory,
    snap_compare: Any,
    size: tuple[int, int],
) -> None:
    with session_scope(db) as session:  # a full brief, so the picture shows it all fits
        row = session.get(Draft, seeded.draft_ids[0])
        assert row is not None
        row.evidence = {**row.evidence, "brief": BRIEF}
        session.add(row)

    async def ready(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, QueueScreen)
        table = screen.query_one(QueueTable)
        table.move_cursor(row=table.get_row_index(str(seeded.draft_ids[0])))
        await pilot.press("enter")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=ready)


def test_bulk_review_screen(seeded: SeedResult, make_app: AppFactory, snap_compare: Any) -> None:
    async def ready(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("T", "ctrl+u", *"intent:billing", "enter")
        await settle(pilot)
        await pilot.press("R")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=ready)
