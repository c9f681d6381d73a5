"""Temporary database trouble is retried with backoff; only a message's own fault shunts it.

The errors are real: SQLite's "database or disk is full" comes from a real insert over
`PRAGMA max_page_count`, "database is locked" from a second connection holding the
write lock, read-only from a `mode=ro` connection. A mail acknowledged with 250 must
survive a full disk for as long as `[runner] max_attempts` claims allow.
"""

from __future__ import annotations

import errno
import smtplib
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

import gateway.conversation.pipeline as pipeline
from gateway.conversation.pipeline import AnalysisRunner
from gateway.inbound.ingest import ingest
from gateway.inbound.parse import ParseError
from gateway.runner import RecoveryRunner, _safe_run
from storage.db import init_db, is_transient, make_engine
from storage.models import AuditLog, Message, utcnow
from tests.gateway.inbound.test_smtp import make_mail


def _real_sqlite_error(db: Path, setup: str, statement: str) -> sqlite3.Error:
    conn = sqlite3.connect(db, timeout=0, isolation_level=None)
    try:
        conn.execute(setup)
        conn.execute(statement)
    except sqlite3.Error as exc:
        return exc
    finally:
        conn.close()
    raise AssertionError("no error")


def test_temporary_errors_are_told_apart_from_faults(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite3"
    with sqlite3.connect(db, isolation_level=None) as conn:
        conn.execute("CREATE TABLE t (x BLOB)")
    full = _real_sqlite_error(
        db, "PRAGMA max_page_count = 2", "INSERT INTO t VALUES (zeroblob(1e6))"
    )
    assert "full" in str(full) and is_transient(full)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    locked = _real_sqlite_error(db, "SELECT 1", "BEGIN IMMEDIATE")
    holder.execute("ROLLBACK")
    holder.close()
    assert "locked" in str(locked) and is_transient(locked)
    ro = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError) as readonly:
        ro.execute("INSERT INTO t VALUES (1)")
    ro.close()
    assert is_transient(readonly.value)
    # Wrapped by SQLAlchemy, as the pipeline sees them.
    assert is_transient(OperationalError("INSERT", {}, full))
    bug = _real_sqlite_error(db, "SELECT 1", "SELECT * FROM no_such_table")
    assert not is_transient(bug) and not is_transient(OperationalError("SELECT", {}, bug))
    assert is_transient(OSError(errno.ENOSPC, "No space left on device"))
    assert not is_transient(ParseError("no headers"))
    assert not is_transient(ValueError("model crashed"))
    psycopg = pytest.importorskip("psycopg")
    assert is_transient(psycopg.errors.SerializationFailure("could not serialize"))
    assert is_transient(psycopg.OperationalError("connection refused"))
    assert not is_transient(psycopg.errors.UniqueViolation("duplicate key"))


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """While `state["full"]` > 0, the pipeline's write hits a real SQLITE_FULL."""
    state = {"full": 0}
    real = pipeline.step_store_analysis

    def store(session: Session, message: Message, analysis: Any) -> None:
        if state["full"] > 0:
            state["full"] -= 1
            conn = session.connection()
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
            conn.exec_driver_sql(f"PRAGMA max_page_count = {pages}")
            try:
                conn.exec_driver_sql(
                    "INSERT INTO rawmessage (sha256, size, data) VALUES ('x', 1, zeroblob(1e6))"
                )
            finally:
                conn.exec_driver_sql("PRAGMA max_page_count = 1073741823")
        real(session, message, analysis)

    monkeypatch.setattr(pipeline, "step_store_analysis", store)
    yield state


def _row(engine: Engine) -> Message:
    with Session(engine) as session:
        msg = session.get(Message, 1)
        assert msg is not None
        return msg


def _time_passes(engine: Engine) -> None:
    with Session(engine) as session:
        session.execute(update(Message).values(claimed_at=utcnow() - timedelta(seconds=1)))
        session.commit()


def _send_one(smtp_server: Any) -> None:
    _, port = smtp_server()
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        assert client.sendmail("dana@acme.example", ["support@example.com"], make_mail(1)) == {}


def test_full_disk_is_retried_with_backoff_then_shunted_after_max_attempts(
    smtp_server, make_config, engine: Engine, full_disk: dict[str, int]
) -> None:
    _send_one(smtp_server)
    runner = AnalysisRunner(
        make_config(kb={"dir": "kb-missing"}, runner={"max_attempts": 3}), engine
    )
    full_disk["full"] = 99
    waits = []
    for attempt in (1, 2):
        assert runner.run_once() == 1
        msg = _row(engine)
        assert (msg.state, msg.attempts, msg.claimed_by) == ("received", attempt, None)
        assert msg.claimed_at is not None
        waits.append((msg.claimed_at - utcnow()).total_seconds())
        assert runner.run_once() == 0  # not before its backoff has passed
        _time_passes(engine)
    assert 25 < waits[0] <= 30 and 55 < waits[1] <= 60
    assert runner.run_once() == 1
    msg = _row(engine)
    assert (msg.state, msg.attempts) == ("shunted", 3)
    assert msg.error and "gave up after 3 attempts" in msg.error and "full" in msg.error


def test_full_disk_that_clears_before_max_attempts_loses_nothing(
    smtp_server, make_config, engine: Engine, full_disk: dict[str, int]
) -> None:
    _send_one(smtp_server)
    runner = AnalysisRunner(make_config(kb={"dir": "kb-missing"}), engine)
    full_disk["full"] = 1
    assert runner.run_once() == 1
    assert _row(engine).state == "received"
    _time_passes(engine)
    assert runner.run_once() == 1
    msg = _row(engine)
    assert (msg.state, msg.attempts, msg.claimed_at) == ("drafted", 2, None)


def test_a_messages_own_fault_still_shunts_at_once(
    smtp_server, make_config, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _send_one(smtp_server)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("cannot make sense of this MIME tree")

    monkeypatch.setattr(pipeline, "parse_message", broken)
    AnalysisRunner(make_config(kb={"dir": "kb-missing"}), engine).run_once()
    msg = _row(engine)
    assert (msg.state, msg.attempts) == ("shunted", 1)
    assert msg.error and msg.error.startswith("parse:")


def test_a_failing_runner_backs_off_more_each_time_in_a_row() -> None:
    results: list[Any] = [sqlite3.OperationalError("database is locked")] * 3 + [2]

    class Flaky:
        name = "flaky"

        def run_once(self) -> int:
            result = results.pop(0)
            if isinstance(result, Exception):
                raise result
            return int(result)

    slept: list[float] = []
    failures: dict[str, int] = {}
    runner = Flaky()
    assert [_safe_run(runner, failures, slept.append) for _ in range(4)] == [0, 0, 0, 2]
    assert slept == [0.5, 1.0, 2.0] and failures == {}


def test_recovery_runner_truncates_the_wal(db_path: Path) -> None:
    engine = make_engine(f"sqlite:///{db_path}")
    try:
        init_db(engine)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE filler (x BLOB)"))
            for _ in range(50):
                conn.execute(text("INSERT INTO filler VALUES (zeroblob(10000))"))
        wal = Path(f"{db_path}-wal")  # kept by the pool's open connections
        assert wal.stat().st_size > 400_000
        recovery = RecoveryRunner(
            engine, stale_after_seconds=600, max_attempts=3, interval=3600, checkpoint_interval=0
        )
        recovery.run_once()
        assert wal.stat().st_size == 0
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM filler").scalar() == 50
    finally:
        engine.dispose()


@pytest.fixture
def raw_read_fails(monkeypatch: pytest.MonkeyPatch) -> list[BaseException]:
    """The next errors in the list are raised by the batch's read of the raw bytes."""
    errors: list[BaseException] = []

    class FailingSession(Session):
        def exec(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
            if errors and "rawmessage" in str(statement).lower():
                raise errors.pop(0)
            return super().exec(statement, *args, **kwargs)

    monkeypatch.setattr(pipeline, "Session", FailingSession)
    return errors


def _all_rows(engine: Engine) -> list[Message]:
    with Session(engine) as session:
        return list(session.exec(select(Message).order_by(Message.id)).all())  # type: ignore[arg-type]


def test_a_temporary_error_while_preparing_hands_the_whole_batch_back(
    make_config, engine: Engine, raw_read_fails: list[BaseException]
) -> None:
    for n in (1, 2, 3):
        ingest(engine, make_mail(n), source="test")
    locked = sqlite3.OperationalError("database is locked")
    raw_read_fails.append(OperationalError("SELECT rawmessage.data", {}, locked))
    runner = AnalysisRunner(make_config(kb={"dir": "kb-missing"}), engine)
    assert runner.run_once() == 3
    rows = _all_rows(engine)
    assert [(m.state, m.attempts, m.claimed_by, m.error) for m in rows] == [
        ("received", 1, None, None)
    ] * 3
    assert all(m.claimed_at is not None and m.claimed_at > utcnow() for m in rows)
    with Session(engine) as session:
        actions = session.exec(select(AuditLog.action)).all()
    assert actions.count("message.retry_later") == 3 and "message.shunted" not in actions
    assert runner.run_once() == 0  # not before the backoff has passed
    _time_passes(engine)
    assert runner.run_once() == 3
    assert [(m.state, m.attempts) for m in _all_rows(engine)] == [("drafted", 2)] * 3


def test_any_other_error_while_preparing_falls_back_to_one_message_at_a_time(
    make_config, engine: Engine, raw_read_fails: list[BaseException]
) -> None:
    for n in (1, 2):
        ingest(engine, make_mail(n), source="test")
    raw_read_fails.append(ValueError("driver returned nonsense"))
    assert AnalysisRunner(make_config(kb={"dir": "kb-missing"}), engine).run_once() == 2
    assert [(m.state, m.attempts) for m in _all_rows(engine)] == [("drafted", 1)] * 2
