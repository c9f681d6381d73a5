"""Rows inserted through `Bulk` are exactly the rows SQLAlchemy would have inserted."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from storage.bulk import Bulk
from storage.db import json_dumps
from storage.models import AuditLog, Message, RawMessage
from tests.support.postgres import pg_bindir

MSG = Message.__table__  # type: ignore[attr-defined]
AUDIT = AuditLog.__table__  # type: ignore[attr-defined]
RAW = RawMessage.__table__  # type: ignore[attr-defined]
# The columns each row of `params_many` brings; the rest are shared.
OWN = ("dedupe_key", "message_id", "sha256", "envelope_to", "subject")


def _message(key: str, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "dedupe_key": key,
        "message_id": f"<{key}@x>",
        "sha256": key.ljust(64, "0"),
        "size": 10,
        "direction": "inbound",
        "source": "test",
        "mailbox": None,
        "envelope_from": "a@b.example",
        "envelope_to": ["x@y.example", "ü@ß.example"],
        "from_addr": "a@b.example",
        "from_name": "Zoë \"quoted\" 'name'",
        "to_addrs": [],
        "subject": "Ünïcode ☃ subject",
        "in_reply_to": None,
        "references": ["<r1@x>", "<r2@x>"],
        # An offset other than UTC: stored as the same instant.
        "received_at": datetime(2026, 11, 27, 4, 5, 6, 789, tzinfo=timezone(timedelta(hours=2))),
        "written_at": datetime(2026, 11, 26, 23, 0, tzinfo=timezone(timedelta(hours=-5))),
        "time_note": None,
        "state": "received",
        "attempts": 0,
        "claimed_by": None,
        "claimed_at": None,
        "error": None,
        "suppression_reason": None,
        "ticket_id": None,
        "thread_signal": None,
        "parsed": None,
    }
    row.update(extra)
    return row


def _stored(engine: Engine, key: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(select(MSG).where(MSG.c.dedupe_key == key)).mappings().one()
    return {k: v for k, v in row.items() if k not in ("id", "dedupe_key", "message_id", "sha256")}


def _same_as_sqlalchemy(engine: Engine) -> None:
    columns = [c.name for c in MSG.c if c.name != "id"]
    bulk = Bulk(MSG.insert(), engine.dialect, columns)
    keys = ("orm1", "orm2", "bulk1", "bulk2", "many1", "many2")
    with engine.begin() as conn:
        conn.execute(
            RAW.insert(), [{"sha256": k.ljust(64, "0"), "size": 1, "data": b"x"} for k in keys]
        )
        conn.execute(MSG.insert(), [_message("orm1"), _message("orm2", parsed={"k": [1]})])
        bulk.run(conn, [_message("bulk1"), _message("bulk2", parsed={"k": [1]})])
        # Converted once for both rows: the columns they share, the JSON one included.
        shared = {c: v for c, v in _message("").items() if c not in OWN}
        own = [{c: v for c, v in _message(k).items() if c in OWN} for k in ("many1", "many2")]
        conn.exec_driver_sql(bulk.sql, bulk.params_many(own, {**shared, "parsed": {"k": [1]}}))
    assert _stored(engine, "bulk1") == _stored(engine, "orm1")
    assert _stored(engine, "bulk2") == _stored(engine, "orm2")
    assert _stored(engine, "many1") == _stored(engine, "many2") == _stored(engine, "orm2")
    back = _stored(engine, "bulk1")
    assert back["received_at"] == datetime(2026, 11, 27, 2, 5, 6, 789, tzinfo=UTC)
    assert back["envelope_to"] == ["x@y.example", "ü@ß.example"]


def test_bulk_rows_match_sqlalchemy_rows_on_sqlite(engine: Engine) -> None:
    _same_as_sqlalchemy(engine)


@pytest.mark.postgres
@pytest.mark.skipif(pg_bindir() is None, reason="PostgreSQL binaries are not installed")
def test_bulk_rows_match_sqlalchemy_rows_on_postgres(pg_engine: Engine) -> None:
    _same_as_sqlalchemy(pg_engine)


def test_naive_datetimes_are_refused_as_sqlalchemy_would(engine: Engine) -> None:
    bulk = Bulk(AUDIT.insert(), engine.dialect, ["at", "actor", "action"])
    with pytest.raises(ValueError, match="naive"), engine.begin() as conn:
        bulk.run_one(conn, {"at": datetime(2026, 1, 1), "actor": "a", "action": "x"})


def test_a_statement_binding_other_names_is_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match="binds"):
        Bulk(AUDIT.insert().values(actor="fixed"), engine.dialect, ["at", "action"])


@pytest.mark.parametrize(
    "value", [None, [], ["a", "ü"], {}, {"k": [1, None]}, "text", 0, [[]], (), [None]]
)
def test_json_dumps_writes_exactly_what_json_dumps_writes(value: Any) -> None:
    assert json_dumps(value) == json.dumps(value)
