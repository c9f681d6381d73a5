"""One message stored on SQLite through the driver itself: the SMTP front door's path.

Each DATA of a quiet front door (or of one whose clients wait for each reply) is one
transaction of three INSERTs. Through SQLAlchemy's Connection those cost about as much
CPU as the rest of the front door's work for the message, and the front door is
CPU-bound under a flood; through the driver, a third of that. The statements and the
rows are the same ones `ingest` builds (`gateway.inbound.statements`), so what lands in
the tables is identical, and the pool still hands out the connection (its pragmas and
the write gate of `serve` apply as always).

Anything unusual goes back to the SQLAlchemy path, which knows how to report it: on a
driver error other than a busy database, the transaction is rolled back and the caller
stores the message again that way (`ingest`), where SQLAlchemy translates the error and
drops a connection that went read-only. A busy database is reported at once as
SQLAlchemy's OperationalError, so the client's 451 does not wait the busy timeout twice.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from gateway.inbound.statements import statements

_FIND = "SELECT id FROM message WHERE dedupe_key = ?"


class FallBack(Exception):
    """The driver path gave up; nothing was stored, store the message the usual way."""


def insert_one(
    engine: Engine,
    key: str,
    raw_row: dict[str, Any],
    message_row: dict[str, Any],
    audit_row: Callable[[int], dict[str, Any]],
) -> tuple[int, bool]:
    """(message id, duplicate). `audit_row(message_id)` builds the audit row.

    Raises FallBack when the caller should store the message through SQLAlchemy, and
    SQLAlchemy's OperationalError when the database stayed locked.
    """
    st = statements(engine.dialect)
    conn: Any = engine.raw_connection()
    try:
        cursor = conn.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")
            cursor.execute(st.put_raw.sql, st.put_raw.params(raw_row))
            cursor.execute(st.put_one.sql, st.put_one.params(message_row))
            row = cursor.fetchone()
            if row is None:  # stored before (maybe by another process a moment ago)
                cursor.execute(_FIND, (key,))
                existing = cursor.fetchone()
                cursor.execute("ROLLBACK")  # not a second copy of the bytes
                return int(existing[0]), True
            message_id = int(row[0])
            cursor.execute(st.put_audit.sql, st.put_audit.params(audit_row(message_id)))
            cursor.execute("COMMIT")
            return message_id, False
        except BaseException as exc:
            _roll_back(conn.dbapi_connection)
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc).lower():
                raise OperationalError(_FIND, None, exc) from exc
            if isinstance(exc, sqlite3.Error | ValueError):
                raise FallBack(str(exc)) from exc
            raise
        finally:
            cursor.close()
    finally:
        conn.close()  # back to the pool


def _roll_back(dbapi: sqlite3.Connection) -> None:
    # If even that fails, the connection is unwell; the pool's reset finds out.
    if dbapi is not None and dbapi.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            dbapi.execute("ROLLBACK")
