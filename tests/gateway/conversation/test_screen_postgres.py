"""Screening and threading on a real PostgreSQL, where runners really run side by side.

SQLite serialises writers, so two runners can never interleave inside one transaction
there; PostgreSQL lets them, and raises where SQLite would not (integer ranges).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from gateway.config import parse_config
from gateway.conversation.pipeline import AnalysisRunner
from gateway.conversation.screen import bump
from gateway.inbound.ingest import ingest
from gateway.runner import run_until_idle
from storage.db import session_scope
from storage.models import Message, MessageState, SenderRate
from tests.support.postgres import pg_bindir

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(pg_bindir() is None, reason="PostgreSQL binaries are not installed"),
]

KEY = "sender:owner@customer.example"
HOUR = datetime(2026, 11, 26, 10, 5, tzinfo=UTC)


def counts(engine: Engine) -> dict[datetime, int]:
    with Session(engine) as session:
        return {r.window_start: r.count for r in session.exec(select(SenderRate)).all()}


def wait_until_blocked(engine: Engine, worker: threading.Thread) -> None:
    """Return once another backend waits on a lock (or the worker has finished)."""
    with engine.connect() as conn:
        while worker.is_alive():
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
            conn.rollback()
            if waiting:
                return
            worker.join(0.01)


def test_a_second_runner_counting_the_same_sender_waits_instead_of_failing(
    pg_engine: Engine,
) -> None:
    outcome: dict[str, object] = {}
    with Session(pg_engine) as first:
        # The first runner has counted a mail in a new hour but not yet committed.
        assert bump(first, KEY, HOUR) == 1

        def second_runner() -> None:
            try:
                with session_scope(pg_engine) as session:
                    outcome["count"] = bump(session, KEY, HOUR)
            except Exception as exc:
                outcome["error"] = exc

        worker = threading.Thread(target=second_runner)
        worker.start()
        wait_until_blocked(pg_engine, worker)
        first.commit()
    worker.join()
    assert "error" not in outcome, outcome.get("error")
    assert outcome["count"] == 2
    assert counts(pg_engine) == {HOUR.replace(minute=0): 2}


def test_concurrent_runners_count_every_message(pg_engine: Engine) -> None:
    runners, hours = 6, 8
    start = threading.Barrier(runners)
    errors: list[BaseException] = []
    lock = threading.Lock()

    def runner() -> None:
        start.wait()
        for h in range(hours):  # every hour is a new window all runners race to open
            try:
                with session_scope(pg_engine) as session:
                    bump(session, KEY, HOUR + timedelta(hours=h))
            except Exception as exc:
                with lock:
                    errors.append(exc)

    threads = [threading.Thread(target=runner) for _ in range(runners)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    window = HOUR.replace(minute=0)
    assert counts(pg_engine) == {window + timedelta(hours=h): runners for h in range(hours)}


def test_keys_longer_than_the_column_count_in_one_row(pg_engine: Engine) -> None:
    with session_scope(pg_engine) as session:
        assert [bump(session, "k" * 1200, HOUR) for _ in range(3)] == [1, 2, 3]


@pytest.mark.parametrize("token", ["12345678901", "2147483648"])
def test_subject_token_beyond_integer_range_is_not_shunted(
    pg_engine: Engine, pg_url: str, tmp_path: Path, token: str
) -> None:
    config = parse_config({"storage": {"url": pg_url}}, base_dir=tmp_path)
    raw = (
        "From: Heidi <heidi@customer.example>\r\nTo: support@example.com\r\n"
        f"Subject: Re: Order [#{token}]\r\nMessage-ID: <huge-token@customer.example>\r\n\r\n"
        "Where is my order?\r\n"
    ).encode()
    pk = ingest(pg_engine, raw, source="test").message_pk
    run_until_idle([AnalysisRunner(config, pg_engine)])
    with Session(pg_engine) as session:
        message = session.get(Message, pk)
        assert message is not None
        assert message.state == MessageState.DRAFTED, message.error
        assert message.thread_signal == "new:token-ignored"
