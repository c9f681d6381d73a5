"""Fixtures for Pilot tests: a real SQLite file seeded with realistic tickets, and apps on it.

No freezegun here (it would freeze the event loop's clock): the app's notion of "now" is
injected instead, which keeps ages on screen deterministic.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from textual.pilot import Pilot
from textual.worker import WorkerCancelled

from review_tui.app import ReviewApp
from review_tui.settings import ReviewSettings
from storage.db import init_db, make_engine
from storage.seed import FIXED_NOW, SeedResult, seed

APP_NOW = FIXED_NOW + timedelta(hours=1)


def fixed_clock() -> datetime:
    return APP_NOW


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'review.sqlite3'}"


@pytest.fixture
def db(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    init_db(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def seeded(db: Engine) -> SeedResult:
    return seed(db, count=40)


@pytest.fixture
def make_app(db_url: str, tmp_path: Path) -> Callable[..., ReviewApp]:
    # Only built-in fixtures beyond db_url: other test packages import this one by name.
    return app_builder(db_url, _prefs_file(tmp_path))


def _prefs_file(tmp_path: Path) -> Path:
    return tmp_path / "prefs" / "review.json"


@pytest.fixture
def prefs_path(tmp_path: Path) -> Path:
    """Where `make_app`'s apps keep the rep's preferences in this test."""
    return _prefs_file(tmp_path)


def app_builder(database_url: str, prefs: Path | None = None) -> Callable[..., ReviewApp]:
    """Apps on `database_url` for a named rep, with the test clock and no timer refresh.

    Preferences (sort, filter, last visit) go to `prefs`, never to the rep's home.
    """

    def build(actor: str = "alice", **overrides: Any) -> ReviewApp:
        values: dict[str, Any] = {
            "prefs_path": prefs,
            "database_url": database_url,
            "actor": actor,
            "refresh_seconds": 0,
            "clock": fixed_clock,
            "from_address": "support@help.example.org",
        }
        values.update(overrides)
        return ReviewApp(ReviewSettings(**values))

    return build


async def settle(pilot: Pilot[Any], rounds: int = 4) -> None:
    """Let database workers finish and their messages be handled."""
    for _ in range(rounds):
        # A newer exclusive worker (a timer refresh) may cancel the one being awaited.
        with contextlib.suppress(WorkerCancelled):
            await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def notes(app: ReviewApp) -> list[str]:
    return [str(n.message) for n in app._notifications]
