"""A store process's WAL checkpoints, run beside its commits instead of inside them.

SQLite checkpoints automatically in whichever commit takes the write-ahead log past
1000 pages: that commit also copies the log into the database file and syncs it. A
backfill commits runs of megabytes, so every other commit did, and the copying was a
third of the time the store held the write lock. In a store process the commits turn
that off (`wal_autocheckpoint=0`, on its own connections only) and a thread here
checkpoints after each one (PASSIVE: it never waits for, or blocks, a writer or reader)
on a connection of its own while the next run is inserted. Nothing about durability
changes: a commit is durable in the log before it returns, checkpointed or not. When
the process ends the log is left to the next checkpoint of anyone (every other
connection keeps SQLite's automatic ones, and `serve` truncates the log periodically).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)


class LogCopier:
    """Checkpoints `engine`'s SQLite log in a thread, once per `poke` (coalesced)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._wanted = threading.Event()
        self._stop = False
        self.copies = 0  # checkpoints run so far
        self._thread: threading.Thread | None = None
        if engine.dialect.name != "sqlite":
            return
        # Before any connection of this process is opened: each one commits without
        # checkpointing.
        event.listen(engine, "connect", _no_autocheckpoint)
        self._thread = threading.Thread(target=self._run, name="wal-copy", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """A commit just landed: copy the log into the database when next free."""
        if self._thread is not None:
            self._wanted.set()

    def close(self, timeout: float = 10.0) -> None:
        """Finish the checkpoint under way (if any) and stop."""
        if self._thread is None:
            return
        self._stop = True
        self._wanted.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            if self._stop:
                return
            try:
                raw = self.engine.raw_connection()
                try:
                    cursor = raw.cursor()
                    cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    cursor.close()
                finally:
                    raw.close()
                self.copies += 1
            except Exception as exc:  # the next commit's poke tries again
                log.info("WAL checkpoint skipped: %s", exc)


def _no_autocheckpoint(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.execute("PRAGMA wal_autocheckpoint=0")
