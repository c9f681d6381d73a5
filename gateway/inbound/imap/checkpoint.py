"""The per-mailbox, per-folder checkpoint: which UIDs are safely stored, and sync health.

A row holds UIDVALIDITY and the last UID whose message is stored *and* acknowledged on
the server; the poller fetches only UIDs above it. A row without UIDVALIDITY is "fresh"
(first start, or the server renumbered the folder) and triggers a scan of the history.
The same row carries the last successful sync and the last error, which `status` shows.
Updates only move forward, so two gateways polling one mailbox cannot move it back.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import and_, or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from gateway.config import ImapConfig
from storage.db import session_scope
from storage.models import ImapCheckpoint, utcnow

log = logging.getLogger(__name__)

# How often a long sync persists its progress; see Checkpointer.
CHECKPOINT_INTERVAL = 1.0


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


class Checkpointer:
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


def flush_quietly(ckpt: Checkpointer) -> None:
    try:
        ckpt.flush()
    except Exception:
        # Storage is failing; the error that got us here (if any) is the one to report,
        # and a checkpoint left behind only means fetching a few messages again.
        log.warning("imap %s: could not advance the checkpoint", ckpt.cfg.name, exc_info=True)
