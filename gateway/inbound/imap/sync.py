"""Bring one IMAP folder's new mail into storage: the part that must never lose or duplicate.

What is new is decided by the checkpoint (UIDVALIDITY + last stored UID), never by
`\\Seen`, which any other client may set. Every message is fetched with `BODY.PEEK[]`
(reading never marks it seen) and stored through `gateway.inbound.ingest`, idempotently, in
one transaction per run of fetched batches (up to STORE_CHUNK messages). Only after that
commit do we acknowledge the run on the server (flag, keyword or move); the checkpoint
follows, at most about a second behind (`gateway.inbound.imap.checkpoint`). The crash windows:

* crash before ingest commits: nothing stored, nothing flagged, checkpoint unchanged;
  the next run fetches the message again.
* crash after ingest, before the flag/move: the next run fetches it again, ingest sees
  a duplicate (no new row), and the flag/move is applied then.
* crash after the flag/move, before the checkpoint: as above; with `move` the message
  has already left the folder, so it is simply not seen again.
* crash after the checkpoint: the batch is done.

MOVE (RFC 6851) is atomic; servers without it get COPY + `\\Deleted` (+ UID EXPUNGE
with UIDPLUS), where a crash between COPY and delete can leave a second copy in the
target folder, but never a second ticket, because ingest dedupes.

A checkpoint with no UIDVALIDITY is "fresh" (first start, or the server renumbered the
folder): the history is scanned, from `backfill_since` when set, and the checkpoint
only gets its UIDVALIDITY when the first batch is stored, so a crash before that just
starts the scan again. Which UIDs to fetch, and in which batches, is decided in
`gateway.inbound.imap.plan`.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date

from imapclient import IMAPClient
from sqlalchemy.engine import Engine

from gateway.config import ImapConfig
from gateway.inbound.imap.checkpoint import Checkpointer, flush_quietly, open_checkpoint
from gateway.inbound.imap.fetch import fetch_bodies
from gateway.inbound.imap.plan import batches, plan, sizes
from gateway.inbound.imap.progress import Progress
from gateway.inbound.ingest import IngestItem, IngestResult, ingest, ingest_batch

log = logging.getLogger(__name__)

# A FETCH of bodies holds this much at most (a single larger message goes alone).
MAX_BATCH_BYTES = 32 * 1024 * 1024
# Fetched batches are stored in one transaction of up to this many messages, and then
# flagged or moved on the server in one command.
STORE_CHUNK = 500


@dataclass(frozen=True, slots=True)
class SyncResult:
    fetched: int
    stored: int
    last_uid: int
    complete: bool


def acknowledge(client: IMAPClient, cfg: ImapConfig, uids: list[int]) -> None:
    """Tell the server these messages are stored, as `after_store` says."""
    if not uids or cfg.after_store == "none":
        return
    if cfg.after_store == "seen":
        client.add_flags(uids, [b"\\Seen"], silent=True)
    elif cfg.after_store == "keyword":
        client.add_flags(uids, [cfg.keyword.encode("ascii")], silent=True)
    elif client.has_capability("MOVE"):
        client.move(uids, cfg.move_to)
    else:
        client.copy(uids, cfg.move_to)
        client.add_flags(uids, [b"\\Deleted"], silent=True)
        if client.has_capability("UIDPLUS"):
            client.uid_expunge(uids)


def _ingest_one_by_one(
    engine: Engine, cfg: ImapConfig, items: list[tuple[int, bytes]]
) -> tuple[list[IngestResult], Exception | None]:
    """The slow path after a batch failed: store until the first message that fails."""
    results: list[IngestResult] = []
    for _uid, raw in items:
        try:
            results.append(ingest(engine, raw, source=f"imap:{cfg.name}", mailbox=cfg.name))
        except Exception as exc:
            return results, exc
    return results, None


def ingest_all(
    engine: Engine, cfg: ImapConfig, items: list[tuple[int, bytes]]
) -> tuple[list[IngestResult], Exception | None]:
    """Store (uid, raw) pairs in order; return the results of the stored prefix and the
    error that stopped the rest, if any.

    One transaction for the whole batch (one fsync instead of one per message); if it
    fails, one by one, so a single message that cannot be stored holds back only itself
    and what follows it, never what came before.
    """
    if not items:
        return [], None
    source = f"imap:{cfg.name}"
    try:
        return ingest_batch(
            engine, [IngestItem(raw, source, mailbox=cfg.name) for _uid, raw in items]
        ), None
    except Exception as exc:
        log.warning("imap %s: storing a batch failed (%s); retrying one by one", cfg.name, exc)
        return _ingest_one_by_one(engine, cfg, items)


def _fetch(client: IMAPClient, cfg: ImapConfig, batch: list[int]) -> list[tuple[int, bytes]]:
    bodies = fetch_bodies(client, batch)
    items: list[tuple[int, bytes]] = []
    for uid in batch:
        body = bodies.get(uid)
        if body is None:
            # Expunged by another client between SEARCH and FETCH: nothing left to store.
            log.info("imap %s: UID %d vanished before it could be fetched", cfg.name, uid)
            continue
        items.append((uid, body))
    return items


@dataclass
class _Stored:
    """Fetched batches stored together, in the writer thread, while more are fetched."""

    batch: list[int]  # every UID asked for, ascending
    items: list[tuple[int, bytes]]  # those the server still had
    future: Future[tuple[list[IngestResult], Exception | None]] | None
    size: int = 0


def _finish(client: IMAPClient, cfg: ImapConfig, stored: _Stored, ckpt: Checkpointer) -> int:
    """Wait for the store's commit, then acknowledge it and mark it done; return how many
    were new. Only committed messages are ever flagged or moved, in one command per
    store (up to STORE_CHUNK UIDs) rather than one per IMAP batch."""
    assert stored.future is not None
    results, failure = stored.future.result()
    items, batch = stored.items, stored.batch
    acknowledge(client, cfg, [uid for uid, _raw in items[: len(results)]])
    # Everything below the first message not stored is done (stored or vanished).
    limit = items[len(results)][0] if failure is not None else batch[-1] + 1
    done = [uid for uid in batch if uid < limit]
    if done:
        ckpt.done(done[-1])
    if failure is not None:
        raise failure
    return sum(1 for r in results if not r.duplicate)


def sync_folder(
    client: IMAPClient,
    cfg: ImapConfig,
    engine: Engine,
    *,
    since: date | None = None,
    rescan: bool = False,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
) -> SyncResult:
    """Store every message of `cfg.folder` the checkpoint has not seen (plus history asked for).

    `since`/`rescan` widen the scan to older UIDs (backfill); stored mail is skipped by
    ingest's dedupe. Stops between batches when `stop` is set.
    """
    status = client.select_folder(cfg.folder)
    uidvalidity = int(status[b"UIDVALIDITY"])
    uidnext = int(status.get(b"UIDNEXT", 0) or 0)
    if cfg.after_store == "move" and not client.folder_exists(cfg.move_to):
        client.create_folder(cfg.move_to)
    last_uid = open_checkpoint(engine, cfg.name, cfg.folder, uidvalidity)
    uids, floor = plan(client, cfg, last_uid, uidnext, since=since, rescan=rescan)
    if progress is not None:
        progress.start(len(uids))
    ckpt = Checkpointer(engine, cfg, uidvalidity)
    stored = fetched = 0
    # Fetching (network, this thread: the IMAP connection is not thread-safe) overlaps
    # with storing (database, the writer thread). Fetched batches are gathered into one
    # store of up to STORE_CHUNK messages, so a backfill pays one fsync per few hundred
    # messages, not per IMAP batch. A store is flagged or moved only after its commit,
    # so the crash guarantees do not change.
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"imap-{cfg.name}-store")
    pending: _Stored | None = None
    held = _Stored([], [], None)

    def submit() -> None:
        """Finish the store in flight, then start storing what is held."""
        nonlocal pending, stored, held
        if pending is not None:
            stored += _finish(client, cfg, pending, ckpt)
            pending = None
        if held.batch:
            held.future = writer.submit(ingest_all, engine, cfg, held.items)
            pending, held = held, _Stored([], [], None)

    def drain() -> None:
        submit()  # finishes the store in flight and starts the held one
        submit()  # finishes that one

    try:
        size_of = sizes(client, uids)
        count = max(cfg.batch_size, 1)
        for batch in batches(uids, size_of, max_count=count, max_bytes=MAX_BATCH_BYTES):
            if stop is not None and stop.is_set():
                drain()
                return SyncResult(fetched, stored, batch[0] - 1, complete=False)
            items = _fetch(client, cfg, batch)
            held.batch.extend(batch)
            held.items.extend(items)
            held.size += sum(len(raw) for _uid, raw in items)
            if len(held.batch) >= STORE_CHUNK or held.size >= MAX_BATCH_BYTES:
                submit()
            fetched += len(batch)
            if progress is not None:
                progress.advance(len(batch))
        drain()
        ckpt.done(max([floor, *uids[-1:]]))
    finally:
        if pending is not None and pending.future is not None:
            # An error (IMAP or storage) interrupted the loop: let the store in flight
            # finish so its commit is not torn down; it is simply re-fetched next time.
            pending.future.exception()
        writer.shutdown(wait=True)
        flush_quietly(ckpt)
    return SyncResult(fetched, stored, max([floor, *uids[-1:]]), complete=True)
