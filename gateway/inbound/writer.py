"""The group-commit writer behind SMTP DATA: one thread, one transaction per burst.

Kept apart from the protocol hooks in `smtp` because it is about the database, not
SMTP: it batches concurrent DATA commands into one commit, keeps 250 meaning durable,
and isolates a failing message from its neighbours. A batch whose connection the engine
found dead and dropped (e.g. one opened while the database file was read-only, see
`storage.db`) gets one immediate try on a fresh connection before anyone hears 451.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from gateway.inbound.ingest import IngestItem, IngestResult, ingest_batch

IngestFn = Callable[..., IngestResult]

_Job = tuple[IngestItem, asyncio.AbstractEventLoop, "asyncio.Future[IngestResult]"]


class GroupCommitWriter:
    """One writer thread; DATA commands that arrive together share one commit.

    The SMTP loop never blocks on the database: each DATA hands its message to this
    thread and awaits a future. The thread takes whatever has queued up (up to
    `max_batch`) and stores it in one transaction, so eight busy connections pay for
    one fsync instead of eight. Every future resolves only after the commit, so 250
    still means durable. If a batch fails, its messages are retried one by one so a
    single poisonous message cannot make its neighbours answer 451.
    """

    def __init__(self, engine: Engine, *, ingest_fn: IngestFn | None = None, max_batch: int = 64):
        self.engine = engine
        self.ingest_fn = ingest_fn
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)
        self._thread.start()

    async def submit(self, item: IngestItem) -> IngestResult:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[IngestResult] = loop.create_future()
        self._queue.put((item, loop, future))
        return await future

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            batch = [job]
            stopping = False
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
            self._commit(batch)
            if stopping:
                return

    def _store(self, batch: list[_Job]) -> list[IngestResult]:
        if self.ingest_fn is not None:
            return [self._ingest_one(item) for item, _, _ in batch]
        return ingest_batch(self.engine, [item for item, _, _ in batch])

    def _commit(self, batch: list[_Job]) -> None:
        try:
            try:
                results = self._store(batch)
            except DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise
                # The engine dropped a dead connection (storage.db): one fresh try.
                results = self._store(batch)
        except Exception as exc:
            if len(batch) > 1:
                for job in batch:
                    self._commit([job])
                return
            _, loop, future = batch[0]
            loop.call_soon_threadsafe(_resolve, future, None, exc)
            return
        for (_, loop, future), result in zip(batch, results, strict=True):
            loop.call_soon_threadsafe(_resolve, future, result, None)

    def _ingest_one(self, item: IngestItem) -> IngestResult:
        assert self.ingest_fn is not None
        return self.ingest_fn(
            self.engine,
            item.raw,
            source=item.source,
            envelope_from=item.envelope_from,
            envelope_to=list(item.envelope_to),
        )


def _resolve(
    future: asyncio.Future[IngestResult], result: IngestResult | None, exc: BaseException | None
) -> None:
    if future.done():  # the client went away and the DATA task was cancelled
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        assert result is not None
        future.set_result(result)
