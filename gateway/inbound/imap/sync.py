"""Bring one IMAP folder's new mail into storage: the part that must never lose or duplicate.

What is new is decided by the checkpoint (UIDVALIDITY + last stored UID), never by
`\\Seen`, which any other client may set. Every message is fetched with `BODY.PEEK[]`
(reading never marks it seen) and stored through `gateway.inbound.ingest`, idempotently, in
one transaction per run of fetched batches (up to a few hundred messages). Only after that
commit do we acknowledge the run on the server (flag, keyword or move); the checkpoint
follows, at most about a second behind (`gateway.inbound.imap.checkpoint`). The crash windows:

* crash before ingest commits: nothing stored, nothing flagged, checkpoint unchanged;
  the next run fetches the message again.
* crash after ingest, before the flag/move: the next run fetches it again, ingest sees
  a duplicate (no new row), and the flag/move is applied then.
* crash after the flag/move, before the checkpoint: as above; with `move` the message
  has already left the folder, so it is simply not seen again.
* crash after the checkpoint: the batch is done.

Fetched batches are stored in runs of a few hundred (`gateway.inbound.imap.pipeline`),
by a writer thread or, for a backfill, a child process (`gateway.inbound.imap.child`),
while the next batches are fetched; each run is flagged only after its commit (in
pieces sent ahead of the next FETCHes, `gateway.inbound.imap.ack`), and the checkpoint
only after the flags.

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
from dataclasses import dataclass
from datetime import date

from imapclient import IMAPClient
from sqlalchemy.engine import Engine

from gateway.config import ImapConfig
from gateway.inbound.imap.checkpoint import Checkpointer, flush_quietly, open_checkpoint
from gateway.inbound.imap.fetch import BodyFetch
from gateway.inbound.imap.pipeline import Pipeline
from gateway.inbound.imap.plan import batches, plan, sizes
from gateway.inbound.imap.progress import Progress
from gateway.inbound.imap.store import Items, Store, ThreadStore

log = logging.getLogger(__name__)

# A FETCH of bodies holds this much at most (a single larger message goes alone).
MAX_BATCH_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SyncResult:
    fetched: int
    stored: int
    last_uid: int
    complete: bool


def _present(cfg: ImapConfig, batch: list[int], bodies: dict[int, bytes]) -> Items:
    items: Items = []
    for uid in batch:
        body = bodies.get(uid)
        if body is None:
            # Expunged by another client between SEARCH and FETCH: nothing left to store.
            log.info("imap %s: UID %d vanished before it could be fetched", cfg.name, uid)
            continue
        items.append((uid, body))
    return items


def sync_folder(
    client: IMAPClient,
    cfg: ImapConfig,
    engine: Engine,
    *,
    since: date | None = None,
    rescan: bool = False,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    store: Store | None = None,
) -> SyncResult:
    """Store every message of `cfg.folder` the checkpoint has not seen (plus history asked for).

    `since`/`rescan` widen the scan to older UIDs (backfill); stored mail is skipped by
    ingest's dedupe. Stops between batches when `stop` is set. `store` stores the runs
    of messages: by default a writer thread of this sync's own; a backfill passes a
    child process (`gateway.inbound.imap.child`).
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
    fetched = 0
    own: ThreadStore | None = None
    if store is None:
        store = own = ThreadStore(engine, cfg)
    pipeline = Pipeline(client, cfg, ckpt, store)
    flagger = pipeline.flagger
    # This thread keeps the IMAP connection busy (it is not thread-safe) and hands each
    # batch on as soon as it is read; the store scans and commits runs in the background.
    try:
        count = max(cfg.batch_size, 1)
        # Any `count` messages of at most MAX_BATCH_BYTES // count bytes fit a batch.
        size_of = sizes(client, uids, small=MAX_BATCH_BYTES // count)
        for batch in batches(uids, size_of, max_count=count, max_bytes=MAX_BATCH_BYTES):
            if stop is not None and stop.is_set():
                pipeline.drain()
                return SyncResult(fetched, pipeline.stored, batch[0] - 1, complete=False)
            if flagger is not None:
                flagger.send()  # flags of committed mail, set just before the FETCH
            items = _present(cfg, batch, BodyFetch(client, batch).result())
            if flagger is not None:
                flagger.collect()  # answered before the FETCH was
            pipeline.add(batch, items)  # may move a run: no FETCH is outstanding now
            fetched += len(batch)
            if progress is not None:
                progress.advance(len(batch))
        pipeline.drain()
        ckpt.done(max([floor, *uids[-1:]]))
    finally:
        pipeline.close()
        if own is not None:
            own.close()
        flush_quietly(ckpt)
    return SyncResult(fetched, pipeline.stored, max([floor, *uids[-1:]]), complete=True)
