"""Analysis workers commit without waiting for the disk; everyone else waits for it.

An analysis lost to a power cut is redone from the claim it leaves behind, so the
workers' engine skips the fsync at commit (SQLite: synchronous=NORMAL in WAL;
PostgreSQL: synchronous_commit off), which is most of the time they would otherwise
hold the write lock the front door waits on. Mail, releases and sends stay fully
synchronous. Checked on a real SQLite file and a real PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.conversation.pipeline import AnalysisRunner
from gateway.inbound.ingest import ingest
from gateway.runner import run_until_idle
from storage.db import init_db, make_engine
from tests.support.postgres import pg_bindir

SAMPLE = Path(__file__).resolve().parents[2] / "gateway" / "samples" / "01.eml"
FULL, NORMAL = 2, 1


def _synchronous(url: str, *, redoable: bool) -> int:
    engine = make_engine(url, redoable=redoable)
    with engine.connect() as conn:
        value = conn.exec_driver_sql("PRAGMA synchronous").scalar_one()
    engine.dispose()
    return int(value)


def test_only_the_redoable_engine_skips_the_fsync(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.sqlite3'}"
    assert _synchronous(url, redoable=False) == FULL
    assert _synchronous(url, redoable=True) == NORMAL


def test_a_redoable_worker_drafts_what_the_front_door_stored(tmp_path: Path, make_config) -> None:
    url = f"sqlite:///{tmp_path / 'q.sqlite3'}"
    front = make_engine(url)
    init_db(front)
    ingest(front, SAMPLE.read_bytes(), source="test")
    worker = make_engine(url, redoable=True)
    run_until_idle([AnalysisRunner(make_config(), worker)])
    with front.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM draft")).scalar_one() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar_one() == FULL
    front.dispose()
    worker.dispose()


@pytest.mark.postgres
@pytest.mark.skipif(pg_bindir() is None, reason="PostgreSQL binaries are not installed")
def test_on_postgres_only_the_redoable_engine_commits_asynchronously(pg_url: str) -> None:
    for redoable, expected in ((False, "on"), (True, "off")):
        engine = make_engine(pg_url, redoable=redoable)
        with engine.connect() as conn:
            assert conn.execute(text("SHOW synchronous_commit")).scalar_one() == expected
        engine.dispose()
