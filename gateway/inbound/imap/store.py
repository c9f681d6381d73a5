"""How a run of fetched mail is stored: one transaction, else one message at a time.

A sync hands runs of a few hundred (uid, raw) pairs to a `Store`; each future answers
with the results of the stored prefix and the error that stopped the rest, so the sync
flags exactly what was committed. The store, not the sync, scans the headers
(`header_facts`), so the thread that keeps the IMAP connection busy has less to do.
`ThreadStore` stores in a writer thread of the sync's own (the pollers); a backfill may
store in a forked child process instead (`gateway.inbound.imap.child`), which runs the
same two halves, `prepare_run` (header facts and rows, no database) and `store_run`
(the transaction).
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from sqlalchemy.engine import Engine

from gateway.config import ImapConfig
from gateway.inbound.ingest import (
    IngestItem,
    IngestResult,
    PreparedBatch,
    ingest,
    ingest_prepared,
    prepare_batch,
)

log = logging.getLogger(__name__)

Items = list[tuple[int, bytes]]
Stored = tuple[list[IngestResult], Exception | None]


class Store(Protocol):
    """Stores runs of (uid, raw) in the order submitted; each
    future holds the results of the stored prefix and the error that stopped the rest
    (see `ingest_all`)."""

    def submit(self, items: Items) -> Future[Stored]: ...

    def close(self) -> None: ...


def _ingest_one_by_one(engine: Engine, cfg: ImapConfig, items: Items) -> Stored:
    """The slow path after a batch failed: store until the first message that fails."""
    results: list[IngestResult] = []
    for _uid, raw in items:
        try:
            results.append(ingest(engine, raw, source=f"imap:{cfg.name}", mailbox=cfg.name))
        except Exception as exc:
            return results, exc
    return results, None


def ingest_all(engine: Engine, cfg: ImapConfig, items: Items) -> Stored:
    """Store (uid, raw) pairs in order; return the results of the stored prefix and the
    error that stopped the rest, if any.

    One transaction for the whole batch (one fsync instead of one per message); if it
    fails, one by one, so a single message that cannot be stored holds back only itself
    and what follows it, never what came before.
    """
    return store_run(engine, cfg, items, prepare_run(engine, cfg, items))


def prepare_run(engine: Engine, cfg: ImapConfig, items: Items) -> PreparedBatch | Exception:
    """The first half of `ingest_all` (no database): the header facts and rows, or why
    they cannot be built."""
    source = f"imap:{cfg.name}"
    try:
        batch = [IngestItem(raw, source, mailbox=cfg.name) for _uid, raw in items]
        return prepare_batch(engine.dialect, batch)
    except Exception as exc:
        return exc


def store_run(
    engine: Engine, cfg: ImapConfig, items: Items, prepared: PreparedBatch | Exception
) -> Stored:
    """The second half of `ingest_all`: one transaction, else one by one."""
    if not items:
        return [], None
    try:
        if isinstance(prepared, Exception):
            raise prepared
        return ingest_prepared(engine, prepared), None
    except Exception as exc:
        log.warning("imap %s: storing a batch failed (%s); retrying one by one", cfg.name, exc)
        return _ingest_one_by_one(engine, cfg, items)


class ThreadStore:
    """Stores in one writer thread of this process."""

    def __init__(self, engine: Engine, cfg: ImapConfig) -> None:
        self.engine, self.cfg = engine, cfg
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"imap-{cfg.name}")

    def submit(self, items: Items) -> Future[Stored]:
        return self._writer.submit(ingest_all, self.engine, self.cfg, items)

    def close(self) -> None:
        self._writer.shutdown(wait=True)
