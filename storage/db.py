"""Engine and sessions. SQLite gets WAL and a busy timeout; PostgreSQL works unchanged.

Each process opens its own engine; an SQLite connection is never shared across threads
(one writer per connection), which is why the pool hands every thread its own.
"""

from __future__ import annotations

import errno
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, ExceptionContext, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel, create_engine

from storage import mail_time as _mail_time  # noqa: F401  (drafts copy their mail's time)
from storage import models as _models  # noqa: F401  (registers the tables)
from storage import scale_indexes as _scale_indexes  # noqa: F401  (PostgreSQL's own indexes)
from storage import worker_table as _worker_table  # noqa: F401
from storage.incidents import tables as _incident_tables  # noqa: F401

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


def make_engine(url: str, *, echo: bool = False, redoable: bool = False) -> Engine:
    """Create an engine for `url` with the pragmas and pool this project relies on.

    `redoable`: every write through this engine can be redone from what is already
    durable (the analysis workers': a lost analysis leaves its message claimed, and
    claim recovery analyses it again). On SQLite its commits then skip the fsync
    (WAL with synchronous=NORMAL), which otherwise is most of the time the workers
    hold the write lock that the front door waits on. The next commit of any fully
    synchronous connection (the front door's, a rep's release) syncs the same log,
    so nothing committed later can outlive it. Others stay synchronous=FULL. On
    PostgreSQL the same holds with synchronous_commit off for these sessions.
    """
    if url.startswith("sqlite"):
        db_path = make_url(url).database or ""
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
        if redoable:
            event.listen(engine, "connect", _sqlite_no_fsync_at_commit)
        # pysqlite's implicit transactions would defer BEGIN; take the write lock at
        # BEGIN so two writers serialise cleanly instead of failing on upgrade.
        event.listen(engine, "begin", _sqlite_begin)
        event.listen(engine, "handle_error", _sqlite_readonly_is_disconnect)
        return engine
    engine = create_engine(url, echo=echo, pool_pre_ping=True, json_serializer=json_dumps)
    if redoable and engine.dialect.name == "postgresql":
        event.listen(engine, "connect", _pg_no_wait_for_flush)
    return engine


def _sqlite_pragmas(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_no_fsync_at_commit(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
    dbapi_conn.execute("PRAGMA synchronous=NORMAL")


def _pg_no_wait_for_flush(dbapi_conn: Any, _record: Any) -> None:
    with dbapi_conn.cursor() as cur:
        cur.execute("SET synchronous_commit TO off")
    dbapi_conn.commit()


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_readonly_is_disconnect(context: ExceptionContext) -> None:
    """A connection opened while the file was read-only stays read-only for good.

    SQLite falls back to a read-only open when it cannot open the file for writing,
    and that connection never notices write access coming back; pooled, it would
    fail every write until a restart. Treating the error as a disconnect makes
    SQLAlchemy drop it and every other pooled connection, so the next try reopens.
    """
    orig = context.original_exception
    if isinstance(orig, sqlite3.OperationalError) and "readonly database" in str(orig):
        context.is_disconnect = True


# sqlite3 messages of conditions that pass: another writer, a full or failing disk, a
# file that is briefly unwritable. Anything else (no such table, syntax) is a bug.
_SQLITE_TRANSIENT = (
    "database is locked",
    "database table is locked",
    "disk i/o error",
    "database or disk is full",
    "readonly database",
    "unable to open database file",
)
# PostgreSQL SQLSTATE classes of the same kind: connection (08), transaction rollback
# such as serialization failures and deadlocks (40), insufficient resources such as a
# full disk (53), operator intervention such as a restart (57), system I/O (58).
_PG_TRANSIENT_CLASSES = ("08", "40", "53", "57", "58")
_OS_TRANSIENT = {errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EAGAIN}


def is_transient(exc: BaseException | None) -> bool:
    """Whether `exc` is a database condition that a later retry can get past.

    Follows SQLAlchemy's wrapped driver error (`.orig`) and explicit causes, so it
    answers the same for the raw sqlite3/psycopg error and its SQLAlchemy wrapper.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return True
        if isinstance(exc, PoolTimeoutError):
            return True
        if isinstance(exc, sqlite3.OperationalError):
            return any(text in str(exc).lower() for text in _SQLITE_TRANSIENT)
        sqlstate = getattr(exc, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate:
            return sqlstate.startswith(_PG_TRANSIENT_CLASSES)
        if type(exc).__module__.startswith("psycopg") and type(exc).__name__ == "OperationalError":
            return True  # psycopg's connection failures carry no SQLSTATE
        if isinstance(exc, OSError):
            return exc.errno in _OS_TRANSIENT
        orig = getattr(exc, "orig", None)
        exc = orig if isinstance(orig, BaseException) else exc.__cause__
    return False


def checkpoint_wal(engine: Engine) -> tuple[int, int, int] | None:
    """Copy SQLite's write-ahead log into the database and truncate it.

    SQLite's automatic checkpoints never shrink the -wal file, and with readers always
    about they may never catch up with it either; a periodic TRUNCATE bounds it.
    Returns SQLite's (busy, log pages, checkpointed pages), or None for other databases.
    """
    if engine.dialect.name != "sqlite":
        return None
    raw = engine.raw_connection()
    try:
        # Not through SQLAlchemy: its BEGIN would hold a transaction open, and a
        # checkpoint cannot truncate the log under its own connection's transaction.
        cursor = raw.cursor()
        row = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        cursor.close()
    finally:
        raw.close()
    return (int(row[0]), int(row[1]), int(row[2])) if row else None


def init_db(engine: Engine) -> None:
    """Create what is missing: new tables whole, new columns of existing tables."""
    from storage.schema import upgrade

    SQLModel.metadata.create_all(engine)
    upgrade(engine)


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
