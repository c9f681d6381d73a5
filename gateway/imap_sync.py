"""Bring one IMAP folder's new mail into storage: the part that must never lose or duplicate.

What is new is decided by the checkpoint (UIDVALIDITY + last stored UID), never by
`\\Seen`, which any other client may set. Every message is fetched with `BODY.PEEK[]`
(reading never marks it seen) and goes through `gateway.ingest.ingest`, which commits
per message and is idempotent. Only after a batch is committed do we acknowledge it on
the server (flag, keyword or move) and then advance the checkpoint. The crash windows:

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
starts the scan again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from imapclient import IMAPClient
from sqlalchemy import and_, or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from gateway.config import ConfigError, ImapConfig
from gateway.ingest import IngestItem, IngestResult, ingest, ingest_batch
from storage.db import session_scope
from storage.models import ImapCheckpoint, utcnow

log = logging.getLogger(__name__)

BODY = b"BODY[]"
# How often a long sync persists its progress; see _Checkpointer.
CHECKPOINT_INTERVAL = 1.0
# A FETCH of bodies holds this much at most (a single larger message goes alone).
MAX_BATCH_BYTES = 32 * 1024 * 1024
SIZE_QUERY_CHUNK = 1000


class Progress(Protocol):
    """Receives progress of a sync: a terminal bar for backfill, log lines in the poller."""

    def start(self, total: int) -> None: ...

    def advance(self, count: int) -> None: ...


@dataclass(frozen=True, slots=True)
class SyncResult:
    fetched: int
    stored: int
    last_uid: int
    complete: bool


def since_date(value: str, *, where: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: expected a date like 2026-01-31, got {value!r}") from exc


# --- checkpoint rows -------------------------------------------------------------


def _row(session: Any, mailbox: str, folder: str) -> ImapCheckpoint | None:
    query = select(ImapCheckpoint).where(
        ImapCheckpoint.mailbox == mailbox, ImapCheckpoint.folder == folder
    )
    row: ImapCheckpoint | None = session.exec(query).first()
    return row


def _ensure_row(engine: Engine, mailbox: str, folder: str) -> None:
    try:
        with session_scope(engine) as session:
            if _row(session, mailbox, folder) is None:
                session.add(ImapCheckpoint(mailbox=mailbox, folder=folder))
    except IntegrityError:
        pass  # another process created it first, which is all we wanted


def open_checkpoint(engine: Engine, mailbox: str, folder: str, uidvalidity: int) -> int | None:
    """The last stored UID for this UIDVALIDITY, or None when the folder must be rescanned."""
    _ensure_row(engine, mailbox, folder)
    with session_scope(engine) as session:
        row = _row(session, mailbox, folder)
        assert row is not None
        if row.uidvalidity == uidvalidity:
            return row.last_uid
        if row.uidvalidity is not None:
            log.warning(
                "imap %s: UIDVALIDITY of %s changed from %s to %s; rescanning the folder "
                "(mail already stored is recognised and not stored twice)",
                mailbox,
                folder,
                row.uidvalidity,
                uidvalidity,
            )
            row.uidvalidity = None
            row.last_uid = 0
            session.add(row)
        return None


def advance_checkpoint(
    engine: Engine, mailbox: str, folder: str, *, uidvalidity: int, uid: int
) -> None:
    """Move last_uid forward (never back), claiming the row for `uidvalidity` if fresh."""
    with session_scope(engine) as session:
        session.execute(
            update(ImapCheckpoint)
            .where(
                col(ImapCheckpoint.mailbox) == mailbox,
                col(ImapCheckpoint.folder) == folder,
                or_(
                    col(ImapCheckpoint.uidvalidity).is_(None),
                    and_(
                        col(ImapCheckpoint.uidvalidity) == uidvalidity,
                        col(ImapCheckpoint.last_uid) < uid,
                    ),
                ),
            )
            .values(uidvalidity=uidvalidity, last_uid=uid)
        )


def record_sync(engine: Engine, mailbox: str, folder: str, *, error: str | None) -> None:
    """Note a successful sync (error=None) or the error that stopped one."""
    _ensure_row(engine, mailbox, folder)
    with session_scope(engine) as session:
        row = _row(session, mailbox, folder)
        assert row is not None
        now = utcnow()
        if error is None:
            row.last_sync_at = now
        else:
            row.last_error = error[:2000]
            row.last_error_at = now
        session.add(row)


# --- the sync itself -------------------------------------------------------------


def _chunks(uids: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(uids), size):
        yield list(uids[start : start + size])


def sizes(client: IMAPClient, uids: Sequence[int]) -> dict[int, int]:
    """RFC822.SIZE per UID (cheap: no bodies), for byte-bounded batches."""
    found: dict[int, int] = {}
    for chunk in _chunks(uids, SIZE_QUERY_CHUNK):
        for uid, item in client.fetch(chunk, [b"RFC822.SIZE"]).items():
            found[uid] = int(item.get(b"RFC822.SIZE", 0))
    return found


def batches(
    uids: Sequence[int], size_of: dict[int, int], *, max_count: int, max_bytes: int
) -> Iterator[list[int]]:
    """Consecutive runs of at most `max_count` UIDs and (unless one message alone is
    bigger) `max_bytes`, so a folder of large attachments cannot exhaust memory."""
    batch: list[int] = []
    total = 0
    for uid in uids:
        size = size_of.get(uid, 0)
        if batch and (len(batch) >= max_count or total + size > max_bytes):
            yield batch
            batch, total = [], 0
        batch.append(uid)
        total += size
    if batch:
        yield batch


def _uids_above(client: IMAPClient, floor: int) -> list[int]:
    # "UID n:*" always matches the highest UID even when it is below n, hence the filter.
    return [u for u in client.search(["UID", f"{floor + 1}:*"]) if u > floor]


def _history(client: IMAPClient, floor: int, since: date | None) -> list[int]:
    if floor <= 0:
        return []
    criteria: list[Any] = ["UID", f"1:{floor}"]
    if since is not None:
        criteria += ["SINCE", since]
    return [u for u in client.search(criteria) if u <= floor]


def plan(
    client: IMAPClient,
    cfg: ImapConfig,
    last_uid: int | None,
    uidnext: int,
    *,
    since: date | None,
    rescan: bool,
) -> tuple[list[int], int]:
    """(UIDs to fetch in ascending order, UID the checkpoint may reach when all are done)."""
    if last_uid is None:
        floor = max(uidnext - 1, 0)
        if since is None and cfg.backfill_since:
            since = since_date(cfg.backfill_since, where=f"[[imap]] {cfg.name} backfill_since")
        wanted = set(_history(client, floor, since)) | set(_uids_above(client, floor))
    else:
        floor = last_uid
        wanted = set(_uids_above(client, floor))
        if rescan or since is not None:
            wanted |= set(_history(client, floor, since))
    return sorted(wanted), floor


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


class _Checkpointer:
    """Advances the checkpoint at most once per CHECKPOINT_INTERVAL, and when flushed.

    A checkpoint lagging behind the flags is safe (a crash only means re-fetching
    messages that ingest then recognises), and it saves a commit per batch.
    """

    def __init__(self, engine: Engine, cfg: ImapConfig, uidvalidity: int) -> None:
        self.engine, self.cfg, self.uidvalidity = engine, cfg, uidvalidity
        self.pending: int | None = None
        self.flushed_at = time.monotonic()

    def done(self, uid: int) -> None:
        self.pending = uid
        if time.monotonic() - self.flushed_at >= CHECKPOINT_INTERVAL:
            self.flush()

    def flush(self) -> None:
        if self.pending is not None:
            advance_checkpoint(
                self.engine,
                self.cfg.name,
                self.cfg.folder,
                uidvalidity=self.uidvalidity,
                uid=self.pending,
            )
            self.pending = None
        self.flushed_at = time.monotonic()


def _store_batch(
    client: IMAPClient, cfg: ImapConfig, engine: Engine, batch: list[int], ckpt: _Checkpointer
) -> int:
    """Fetch, ingest, acknowledge one batch, then mark it done; return how many were new."""
    response = client.fetch(batch, [b"BODY.PEEK[]"])
    items: list[tuple[int, bytes]] = []
    for uid in batch:
        item = response.get(uid)
        if item is None or BODY not in item:
            # Expunged by another client between SEARCH and FETCH: nothing left to store.
            log.info("imap %s: UID %d vanished before it could be fetched", cfg.name, uid)
            continue
        items.append((uid, bytes(item[BODY])))
    results, failure = ingest_all(engine, cfg, items)
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
    ckpt = _Checkpointer(engine, cfg, uidvalidity)
    stored = fetched = 0
    try:
        size_of = sizes(client, uids)
        count = max(cfg.batch_size, 1)
        for batch in batches(uids, size_of, max_count=count, max_bytes=MAX_BATCH_BYTES):
            if stop is not None and stop.is_set():
                return SyncResult(fetched, stored, batch[0] - 1, complete=False)
            stored += _store_batch(client, cfg, engine, batch, ckpt)
            fetched += len(batch)
            if progress is not None:
                progress.advance(len(batch))
        ckpt.done(max([floor, *uids[-1:]]))
    finally:
        _flush_quietly(ckpt)
    return SyncResult(fetched, stored, max([floor, *uids[-1:]]), complete=True)


def _flush_quietly(ckpt: _Checkpointer) -> None:
    try:
        ckpt.flush()
    except Exception:
        # Storage is failing; the error that got us here (if any) is the one to report,
        # and a checkpoint left behind only means fetching a few messages again.
        log.warning("imap %s: could not advance the checkpoint", ckpt.cfg.name, exc_info=True)
