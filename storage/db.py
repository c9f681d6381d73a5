"""Engine and sessions. SQLite gets WAL and a busy timeout; PostgreSQL works unchanged.

Each process opens its own engine; an SQLite connection is never shared across threads
(one writer per connection), which is why the pool hands every thread its own.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel, create_engine

from storage import models as _models  # noqa: F401  (registers the tables)

BUSY_TIMEOUT_MS = 30_000


def sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{Path(path)}"


def json_dumps(value: Any) -> str:
    """json.dumps, minus its call overhead for the values most rows hold.

    Every ingested message writes five JSON values and most are None or an empty list;
    at thousands of messages a second the encoder's set-up was a fifth of the store's
    CPU. The output is exactly json.dumps's.
    """
    if value is None:
        return "null"
    if value == [] and isinstance(value, list):
        return "[]"
    return json.dumps(value)


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an engine for `url` with the pragmas and pool this project relies on."""
    if url.startswith("sqlite"):
        db_path = url.split("///", 1)[-1]
        memory = db_path in ("", ":memory:")
        if not memory:
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            echo=echo,
            json_serializer=json_dumps,
            connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
            # The pool hands each checkout its own connection exclusively, so no sqlite3
            # connection is ever used by two threads at once; in-memory databases would
            # vanish with their connection, so they get exactly one.
            **({"poolclass": StaticPool} if memory else {"pool_size": 8, "max_overflow": 8}),
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's implicit transactions would defer BEGIN; take the write lock at
        # BEGIN so two writers serialise cleanly instead of failing on upgrade.
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, json_serializer=json_dumps)


def _sqlite_pragmas(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def init_db(engine: Engine) -> None:
    SQLModel.metadata.create_all(engine)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
