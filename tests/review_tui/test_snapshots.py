"""SVG snapshots of the main screens on a deterministic seeded database.

The app's clock is injected (ages are relative to a fixed instant), the seed is fixed,
and the terminal size is fixed, so the pictures only change when the UI does.
Update with `pytest tests/review_tui/test_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from review_tui.screens.queue import QueueScreen
from review_tui.widgets.queue_table import QueueTable
from storage.seed import SeedResult
from tests.review_tui.conftest import settle
from tests.review_tui.test_app import AppFactory

SIZE = (140, 42)


def test_queue_screen(seeded: SeedResult, make_app: AppFactory, snap_compare: Any) -> None:
    async def ready(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("t", "t")

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=ready)


def test_ticket_screen(seeded: SeedResult, make_app: AppFactory, snap_compare: Any) -> None:
    async def ready(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, QueueScreen)
        table = screen.query_one(QueueTable)
        table.move_cursor(row=table.get_row_index(str(seeded.draft_ids[0])))
        await pilot.press("enter")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=ready)


def test_bulk_review_screen(seeded: SeedResult, make_app: AppFactory, snap_compare: Any) -> None:
    async def ready(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("T", "ctrl+u", *"intent:billing", "enter")
        await settle(pilot)
        await pilot.press("R")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=ready)
