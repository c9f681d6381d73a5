"""The SMTP front door's driver-level path on SQLite stores exactly what the SQLAlchemy
path stores, and reports trouble the same way."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from gateway.inbound import sqlite_accept
from gateway.inbound.ingest import IngestItem, ingest, ingest_batch
from storage.db import init_db, is_transient, make_engine
from tests.support.dovecot import make_message

MESSAGE_COLUMNS = (
    "dedupe_key, message_id, sha256, size, direction, source, mailbox, envelope_from, "
    'envelope_to, state, from_addr, from_name, to_addrs, subject, in_reply_to, "references"'
)


def _rows(path: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    conn = sqlite3.connect(str(path))
    try:
        messages = conn.execute(
            f"SELECT {MESSAGE_COLUMNS}, "
            "typeof(received_at), length(received_at) FROM message ORDER BY dedupe_key"
        ).fetchall()
        audits = conn.execute(
            "SELECT actor, action, entity_type, details, typeof(at) FROM auditlog "
            "WHERE action = 'message.received' ORDER BY details"
        ).fetchall()
    finally:
        conn.close()
    return messages, audits


def test_driver_path_stores_the_rows_the_sqlalchemy_path_stores(tmp_path: Path) -> None:
    raws = [make_message(i, In_Reply_To="<parent@x.example>") for i in range(2)]
    items = [
        IngestItem(raw, "smtp:127.0.0.1", "<a@b.example>", ("support@example.com",)) for raw in raws
    ]
    fast, slow = tmp_path / "fast.sqlite3", tmp_path / "slow.sqlite3"
    for path in (fast, slow):
        engine = make_engine(f"sqlite:///{path}")
        init_db(engine)
        if path == fast:  # one at a time: the driver path
            for item in items:
                assert not ingest_batch(engine, [item])[0].duplicate
            again = ingest_batch(engine, [items[0]])[0]
            assert again.duplicate
        else:  # both in one batch: SQLAlchemy's executemany
            ingest_batch(engine, items)
        engine.dispose()
    assert _rows(fast) == _rows(slow)
    with sqlite3.connect(str(fast)) as conn:
        assert conn.execute("SELECT count(*) FROM rawmessage").fetchone() == (2,)


def test_a_locked_database_is_reported_at_once_as_a_temporary_error(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    init_db(engine)
    engine.dispose()
    event.listen(engine, "connect", lambda conn, _r: conn.execute("PRAGMA busy_timeout=200"))
    holder = sqlite3.connect(str(path), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(OperationalError) as locked:
            ingest(engine, make_message(1), source="smtp:127.0.0.1")
        assert is_transient(locked.value)
        assert time.monotonic() - started < 5  # not the busy timeout twice over
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not ingest(engine, make_message(1), source="smtp:127.0.0.1").duplicate
    engine.dispose()


def test_other_driver_errors_go_back_to_the_sqlalchemy_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    init_db(engine)
    tried: list[str] = []
    real = sqlite_accept.insert_one

    def failing(*args: object, **kwargs: object) -> tuple[int, bool]:
        tried.append("driver")
        raise sqlite_accept.FallBack("disk I/O error")

    monkeypatch.setattr(sqlite_accept, "insert_one", failing)
    result = ingest(engine, make_message(2), source="smtp:127.0.0.1")
    assert tried == ["driver"] and not result.duplicate
    monkeypatch.setattr(sqlite_accept, "insert_one", real)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM message")).scalar() == 1
    engine.dispose()
