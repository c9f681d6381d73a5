"""The store process's WAL checkpoints: off its commits, run by a thread after each."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from gateway.inbound.imap.logcopy import LogCopier
from storage.db import make_engine

PAGE = 4096


def _write(engine: Engine, transactions: int, rows: int = 200) -> None:
    for _ in range(transactions):
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS t (x BLOB)"))
            for _ in range(rows):
                conn.execute(text("INSERT INTO t VALUES (randomblob(3000))"))


def _frames_in_log(path: Path) -> int:
    conn = sqlite3.connect(str(path))
    try:
        return int(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])
    finally:
        conn.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[Path, Engine, LogCopier]]:
    """A database, an engine of a store process, and its copier."""
    path = tmp_path / "db.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    copier = LogCopier(engine)
    yield path, engine, copier
    copier.close()
    engine.dispose()


def test_commits_leave_the_log_alone_and_a_poke_copies_it(
    store: tuple[Path, Engine, LogCopier],
) -> None:
    path, engine, copier = store
    _write(engine, 10)  # ~1500 pages in ten commits
    # SQLite's automatic checkpoint (at 1000 pages) would have let the log start over;
    # with it off the log holds every commit.
    assert Path(f"{path}-wal").stat().st_size > 1400 * PAGE
    copier.poke()
    deadline = time.monotonic() + 10
    while copier.copies < 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    # Copied in full, so the next commit starts the log over from its beginning.
    _write(engine, 1, rows=10)
    assert _frames_in_log(path) < 100


def test_without_a_poke_the_log_keeps_growing(store: tuple[Path, Engine, LogCopier]) -> None:
    path, engine, copier = store
    _write(engine, 10)
    _write(engine, 1, rows=10)
    assert copier.copies == 0
    assert _frames_in_log(path) > 1400


def test_other_databases_get_no_thread() -> None:
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    copier = LogCopier(engine)
    copier.poke()
    copier.close()
    assert copier._thread is None
