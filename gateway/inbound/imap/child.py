"""The store of a backfill: a forked child process that commits runs beside the fetching.

Why a child process: fetching and storing are both Python, so in two threads they take
turns on one interpreter lock, and a backfill ran at about a third of the bare IMAP
rate. In a child the header scan and the database work run on a second core while the
parent keeps the IMAP connection busy.
Runs are sent ahead and received by a thread of the child's while it stores the last;
its commits leave the copying of SQLite's log into the database to a thread of its own
(`gateway.inbound.imap.logcopy`).

Why fork, and only then: a fresh interpreter (spawn, forkserver) spends about a second
importing SQLAlchemy and the models, longer than a backfill of thousands of messages
takes; a forked child has them already. Forking is only safe while the process has a
single thread (a lock another thread holds at the fork stays held in the child forever),
so `store_for` forks only then, before the sync connects or draws a progress bar, and
otherwise stores in a thread (`gateway.inbound.imap.store`). The long-running poller,
whose process has a thread per mailbox, therefore always stores in a thread; so does an
in-memory SQLite database, which lives in one connection.

Durability does not change: the child commits, then answers; the parent flags or moves
only UIDs it has an answer for, then advances the checkpoint. The child never touches
the connections it inherited (closing one could end the parent's session), ignores
SIGINT and SIGTERM (stopping is the parent's call), and exits when its pipe closes. The
new windows: the child dies before answering (the parent flags nothing of that run and
fails the sync; what it committed is a duplicate next time), or the parent dies (the
child finishes the run in hand, also a duplicate next time, and exits).
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import logging
import multiprocessing
import pickle
import queue
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from gateway.config import ImapConfig
from gateway.inbound.imap.logcopy import LogCopier
from gateway.inbound.imap.store import Items, Store, Stored, ThreadStore, prepare_run, store_run
from gateway.inbound.ingest import IngestResult, PreparedBatch
from gateway.inbound.statements import statements

log = logging.getLogger(__name__)

# How long closing waits for the child to finish the runs it was sent before ending it.
CLOSE_TIMEOUT = 60.0

# The pipe the runs go through holds this much (Linux's default ceiling).
PIPE_BYTES = 1 << 20

# In the child: the pools it inherited (see `_serve`).
_INHERITED: list[Any] = []


class StoreProcessError(RuntimeError):
    """The store process ended without confirming a commit; nothing of it was flagged."""


def can_fork(engine: Engine) -> bool:
    """Whether a store process may be forked now: see the module docstring."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return False
    if threading.active_count() != 1:
        return False
    memory = engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:")
    return not memory


class ChildStore:
    """A forked process that stores the runs it is sent and answers each once committed.

    One thread sends runs, another reads the answers, in the same order; each end of the
    two pipes is used by one thread only.
    """

    def __init__(self, engine: Engine, cfg: ImapConfig) -> None:
        ctx = multiprocessing.get_context("fork")
        requests, self._requests = ctx.Pipe(duplex=False)
        self._answers, answers = ctx.Pipe(duplex=False)
        _widen(self._requests)
        self.process = ctx.Process(
            target=_serve,
            args=(engine, cfg, requests, answers, (self._requests, self._answers)),
            name=f"imap-{cfg.name}-store",
            daemon=True,
        )
        # Garbage the parent has not collected yet (an old socket, say) must not be
        # finalised in the child, where closing it would speak on the parent's behalf.
        gc.freeze()
        try:
            self.process.start()
        except BaseException:
            self._requests.close()
            self._answers.close()
            raise
        finally:
            gc.unfreeze()
            requests.close()
            answers.close()
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"imap-{cfg.name}")
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"imap-{cfg.name}")

    def submit(self, items: Items) -> Future[Stored]:
        sent = self._sender.submit(self._requests.send, items)
        return self._reader.submit(self._receive, sent)

    def _receive(self, sent: Future[None]) -> Stored:
        try:
            sent.result()
            stored, error = self._answers.recv()
        except (EOFError, OSError) as exc:
            self.process.join(timeout=5)
            raise StoreProcessError(
                f"the store process ended (exit code {self.process.exitcode}) "
                "before confirming its commit"
            ) from exc
        return [IngestResult(*fields) for fields in stored], error

    def close(self) -> None:
        """Let the child store what it was sent, then wait for it to exit."""
        self._sender.shutdown(wait=True)
        self._requests.close()  # the child's EOF, once it has read every run
        self.process.join(CLOSE_TIMEOUT)
        if self.process.is_alive():
            log.warning("store process %s did not exit; ending it", self.process.pid)
            self.process.terminate()  # an unfinished transaction just rolls back
            self.process.join()
        self._reader.shutdown(wait=True)  # answers still unread end in EOF now
        self._answers.close()


def _widen(end: Connection) -> None:
    """A pipe that holds a whole run: a run is megabytes, and through the default 64 KiB
    it goes in dozens of writes, each one the sending thread taking the interpreter lock
    back from the thread that fetches."""
    # Not Linux, or above /proc/sys/fs/pipe-max-size: the default pipe still works.
    with contextlib.suppress(AttributeError, OSError):
        fcntl.fcntl(end.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)


def _serve(
    engine: Engine,
    cfg: ImapConfig,
    requests: Connection,
    answers: Connection,
    parents: tuple[Connection, Connection],
) -> None:
    """The child: store each run received and answer, until the requests pipe closes.

    One thread receives the next run while this one scans its headers and builds its
    rows, and a third inserts and commits the run before and then answers. This thread
    builds only while the other is in its commit (the log's fsync, with the interpreter
    lock free), not beside its inserts: sqlite3 gives up the lock around every row it
    inserts, and while Python work held it, each row waited to get it back (3.5 times
    as long, measured).
    """
    for end in parents:
        end.close()  # so the parent's exit, however abrupt, reaches us as EOF
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # The parent's connections stay referenced until we exit, so none is closed here.
    _INHERITED.append(engine.pool)
    engine.dispose(close=False)
    checkpoints = LogCopier(engine)
    ready: queue.Queue[Items | None] = queue.Queue(1)
    threading.Thread(target=_receive, args=(requests, ready), daemon=True).start()
    committing = threading.Event()  # the writer's run is past its inserts
    event.listen(engine, "commit", lambda _conn: committing.set())
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
    last: Future[bool] | None = None
    try:
        _warm(engine)
        while (items := ready.get()) is not None:
            if last is not None:
                committing.wait()
            prepared = prepare_run(engine, cfg, items)
            if last is not None and not last.result():
                return  # the parent is gone; what was committed is a duplicate next time
            committing.clear()
            last = writer.submit(_store, engine, cfg, items, prepared, answers, committing)
            last.add_done_callback(lambda _f: checkpoints.poke())
        if last is not None:
            last.result()
    finally:
        writer.shutdown(wait=True)
        checkpoints.close()
        engine.dispose()  # our own connections only


def _store(
    engine: Engine,
    cfg: ImapConfig,
    items: Items,
    prepared: PreparedBatch | Exception,
    answers: Connection,
    committing: threading.Event,
) -> bool:
    """Store a run and answer; False if the parent is gone."""
    try:
        results, error = store_run(engine, cfg, items, prepared)
    finally:
        committing.set()  # also when no commit came (a run that failed altogether)
    stored = [(r.message_pk, r.duplicate, r.dedupe_key) for r in results]  # pickle fast
    try:
        answers.send((stored, _portable(error)))
    except OSError:
        return False
    return True


def _receive(requests: Connection, ready: queue.Queue[Items | None]) -> None:
    try:
        while True:
            ready.put(requests.recv())
    except EOFError:
        pass
    finally:
        ready.put(None)  # ends the storing loop, whatever ended this one


def _warm(engine: Engine) -> None:
    """Connect and compile while the parent is still logging in to the IMAP server."""
    try:
        with engine.connect():
            statements(engine.dialect)
    except Exception:
        pass  # the first run meets the same problem and reports it


def _portable(error: Exception | None) -> Exception | None:
    """The error itself if it survives the pipe, else a RuntimeError that says what it was."""
    if error is None:
        return None
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error


@contextmanager
def store_for(engine: Engine, cfg: ImapConfig) -> Iterator[Store]:
    """A child store process when one may be forked (see `can_fork`), else a thread."""
    store: Store | None = None
    if can_fork(engine):
        try:
            store = ChildStore(engine, cfg)
        except OSError as exc:
            log.warning("imap %s: no store process (%s); storing in a thread", cfg.name, exc)
    if store is None:
        store = ThreadStore(engine, cfg)
    try:
        yield store
    finally:
        store.close()
