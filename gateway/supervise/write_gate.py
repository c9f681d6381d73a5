"""SQLite has one writer at a time; this makes the front door the one that goes first.

Every transaction here takes SQLite's write lock at BEGIN (`storage.db`). An analysis
transaction holds it for tens of milliseconds (screening, threading and drafting run
inside it) and a worker begins its next one microseconds after the last, while a
waiting front door sleeps in SQLite's busy handler (1, 2, 5, 10 … 100 ms between
tries) and keeps missing the gaps: two processes on one file, one writing like
analysis, starved the other for seconds.

So the processes of `serve` also agree, with two flock(2) files beside the database:

* `-gate` is a turnstile. The front door closes it (exclusive) when a transaction of
  its own starts and opens it `LINGER` after its last one ends: under a flood the next
  message is milliseconds away. A worker passes it (shared, then let go) before each
  transaction, so none starts while the front door writes or is about to.
* `-room` is held exclusively for every transaction, so the front door waits for
  exactly the one worker transaction already running, not for the busy handler's next
  guess. Workers take it only right after passing the turnstile (else they go back to
  it), so however many there are, at most one is ever ahead of the front door; they
  would queue on SQLite's lock one at a time anyway.

Under a flood analysis therefore pauses and catches up after it; with mail arriving
less often than every `LINGER` it runs between messages. The locks are taken when the
pool hands out a connection and dropped when it comes back, which brackets every
transaction. Waits poll a non-blocking flock (the front door every 0.2 ms, workers
every millisecond) and give up after `MAX_WAIT`; SQLite's own lock and busy timeout
then decide as before, so the gate orders writers but is never a new way to hang. A
process that dies loses its flocks with it. Nothing outside `serve` (the review UI,
`process` run by hand) uses the gate; it queues on SQLite's lock as always. Other
databases need none of this.
"""

from __future__ import annotations

import fcntl
import logging
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import event
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

MAX_WAIT = 30.0
LINGER = 0.01
FIRST_PAUSE = 0.0002
AFTER_PAUSE = 0.001
_KEY = "supportgate_write_gate"


def go_first(engine: Engine) -> bool:
    """Front-door transactions on `engine` wait only for the worker transaction running."""
    return _install(engine, first=True)


def give_way(engine: Engine) -> bool:
    """Worker transactions on `engine` start only while the front door is not waiting."""
    return _install(engine, first=False)


def gate_files(engine: Engine) -> tuple[Path, Path] | None:
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(f"{database}-gate"), Path(f"{database}-room")


class _FrontDoor:
    """The front door's side, one per process: its threads write as one party.

    The turnstile stays closed for `LINGER` after the last front-door transaction: under
    a flood the next message is milliseconds away, and a worker slipping into that gap
    would make it wait a whole analysis transaction. A keeper thread opens it.
    """

    def __init__(self, files: tuple[Path, Path]) -> None:
        self.gate: BinaryIO = files[0].open("ab")
        self.room: BinaryIO = files[1].open("ab")
        self.cond = threading.Condition()
        self.active = 0
        self.gate_closed = False
        self.last_end = 0.0
        threading.Thread(target=self._keep, name="write-gate", daemon=True).start()

    def enter(self) -> None:
        with self.cond:
            self.active += 1
            if self.active > 1:
                return  # another thread of ours holds the room already
            deadline = time.monotonic() + MAX_WAIT
            got = self.gate_closed or _lock(self.gate, fcntl.LOCK_EX, deadline, FIRST_PAUSE)
            self.gate_closed = True
            if not (_lock(self.room, fcntl.LOCK_EX, deadline, FIRST_PAUSE) and got):
                log.warning("write gate: waited %.0f s; going on without it", MAX_WAIT)

    def leave(self) -> None:
        with self.cond:
            self.active -= 1
            if self.active == 0:
                fcntl.flock(self.room, fcntl.LOCK_UN)
                self.last_end = time.monotonic()
                self.cond.notify()

    def _keep(self) -> None:
        with self.cond:
            while True:
                if not self.gate_closed or self.active:
                    self.cond.wait()
                    continue
                left = self.last_end + LINGER - time.monotonic()
                if left > 0:
                    self.cond.wait(left)
                    continue
                fcntl.flock(self.gate, fcntl.LOCK_UN)
                self.gate_closed = False


class _Worker:
    """A worker's side, per DBAPI connection (own open file descriptions, so two
    connections exclude each other like two processes do)."""

    def __init__(self, files: tuple[Path, Path], depth: threading.local) -> None:
        self.gate: BinaryIO = files[0].open("ab")
        self.room: BinaryIO = files[1].open("ab")
        self.depth = depth
        self.holding = False

    def enter(self) -> None:
        if getattr(self.depth, "n", 0):
            return  # this thread already holds the room: never wait for ourselves
        deadline = time.monotonic() + MAX_WAIT
        while True:
            # Through the turnstile, then into the room if it is free; if not, back to
            # the turnstile, which the front door may have closed in the meantime.
            passed = _lock(self.gate, fcntl.LOCK_SH, deadline, AFTER_PAUSE)
            fcntl.flock(self.gate, fcntl.LOCK_UN)
            if passed and _lock(self.room, fcntl.LOCK_EX, 0.0, AFTER_PAUSE):
                break
            if time.monotonic() >= deadline:
                log.info("waited %.0f s for the front door to pause; going ahead", MAX_WAIT)
                break
            time.sleep(AFTER_PAUSE)
        self.holding = True
        self.depth.n = getattr(self.depth, "n", 0) + 1

    def leave(self) -> None:
        if not self.holding:
            return
        self.holding = False
        self.depth.n = max(getattr(self.depth, "n", 1) - 1, 0)
        fcntl.flock(self.room, fcntl.LOCK_UN)

    def close(self) -> None:
        self.leave()
        self.gate.close()
        self.room.close()


def _lock(file: BinaryIO, mode: int, deadline: float, pause: float) -> bool:
    while True:
        try:
            fcntl.flock(file, mode | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(pause)


def _install(engine: Engine, *, first: bool) -> bool:
    files = gate_files(engine)
    if files is None:
        return False
    try:
        for path in files:
            path.touch(exist_ok=True)
        door = _FrontDoor(files) if first else None
    except OSError as exc:
        log.warning("write gate not used: %s", exc)
        return False
    depth = threading.local()

    # A connection is checked out before its BEGIN and checked in after its COMMIT, so
    # the pool's events bracket every transaction. (The engine's own "begin" event would
    # come after storage.db's BEGIN IMMEDIATE: SQLAlchemy ignores insert=True there.)
    def checkout(_dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        if door is not None:
            record.info[_KEY] = True
            door.enter()
            return
        held = record.info.get(_KEY)
        if held is None:
            held = record.info[_KEY] = _Worker(files, depth)
        held.enter()

    def checkin(_dbapi_conn: Any, record: Any) -> None:
        if record is None:
            return
        held = record.info.get(_KEY)
        if door is not None:
            if held:
                record.info[_KEY] = False
                door.leave()
        elif held is not None:
            held.leave()

    def close(_dbapi_conn: Any, record: Any) -> None:
        held = record.info.pop(_KEY, None)
        if isinstance(held, _Worker):
            held.close()
        elif held and door is not None:
            door.leave()

    event.listen(engine.pool, "checkout", checkout)
    event.listen(engine.pool, "checkin", checkin)
    event.listen(engine.pool, "close", close)
    return True
