"""The review UI: a Textual terminal app where reps triage, edit and release drafts.

It imports `storage` and nothing of the gateway: the two share only the database, so
either can crash or restart without losing work. Textual is imported lazily by `run`
so that importing this package stays cheap for the CLI.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from review_tui.settings import MetricsBeside, Redrafter

if TYPE_CHECKING:
    from storage.desk.hours import Desk


def run(
    database_url: str,
    *,
    actor: str,
    ops: list[str],
    bulk_ops_threshold: int = 20,
    bulk_window_minutes: int = 60,
    lease_minutes: int = 15,
    refresh_seconds: float = 2.0,
    page_size: int = 200,
    from_address: str = "support@example.com",
    intents: Sequence[str] | None = None,
    redraft: Redrafter | None = None,
    prefs_path: Path | None = None,
    metrics_beside: MetricsBeside | None = None,
    desk: Desk | None = None,
) -> None:
    """Open the review app on `database_url` as rep `actor` until they quit.

    The rep's view, sort, filter and last visit are remembered in `prefs_path` (by
    default under `$XDG_STATE_HOME/supportgate/`). `desk` (teams, reps, reply targets)
    decides the rep's own queue; without one, "mine" is what the rep owns and what
    nobody owns.
    """
    from review_tui.app import ReviewApp
    from review_tui.prefs import default_prefs_path
    from review_tui.settings import INTENTS, ReviewSettings
    from storage.db import init_db, make_engine
    from storage.desk.hours import Desk

    if not actor.strip():
        raise ValueError("the review UI needs a rep name (set [review] actor or $USER)")
    if page_size < 1 or lease_minutes < 1:
        raise ValueError("page_size and lease_minutes must be at least 1")
    settings = ReviewSettings(
        database_url=database_url,
        actor=actor,
        ops=tuple(ops),
        bulk_ops_threshold=bulk_ops_threshold,
        bulk_window_minutes=bulk_window_minutes,
        lease_minutes=lease_minutes,
        refresh_seconds=refresh_seconds,
        page_size=page_size,
        from_address=from_address,
        intents=tuple(intents) if intents else INTENTS,
        redraft=redraft,
        metrics_beside=metrics_beside,
        prefs_path=prefs_path or default_prefs_path(),
        desk=desk or Desk(),
    )
    engine = make_engine(database_url)
    init_db(engine)
    try:
        ReviewApp(settings, engine=engine).run()
    finally:
        engine.dispose()
