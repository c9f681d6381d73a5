"""Runs of fetched mail: stored while more is fetched, acknowledged only once committed.

A sync fetches batches of tens of messages but stores them in runs of up to STORE_CHUNK,
so a backfill pays one commit (one fsync) and one flag or move command per few hundred
messages, not per IMAP batch; while the store is idle (at the start) a run is whatever
has been fetched, so storing starts at once. The store (a writer thread, or a child
process: `gateway.inbound.imap.store`, `.child`) works on up to IN_FLIGHT runs while
this thread fetches, and runs are finished oldest first: wait for the commit, flag or
move exactly the messages committed (moved here; flags queued for the STOREs the sync
sends ahead of its FETCHes, `gateway.inbound.imap.ack`), and advance the checkpoint
once the flags are set. So the
order per run is commit → flag → checkpoint whatever runs it, and a run stored after an
earlier one failed is left unflagged, which is the "crash after ingest, before the
flag" window of `gateway.inbound.imap.sync`. Split from `sync.py`, which decides what to
fetch.
"""

from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field

from imapclient import IMAPClient

from gateway.config import ImapConfig
from gateway.inbound.imap.ack import Flagger, flagger_for
from gateway.inbound.imap.checkpoint import Checkpointer
from gateway.inbound.imap.store import Store, Stored

log = logging.getLogger(__name__)

# A run holds up to this many messages (or bytes, unless one batch alone is bigger).
STORE_CHUNK = 500
STORE_BYTES = 16 * 1024 * 1024
# Runs handed to the store at once; while the oldest is flagged, the next is stored.
IN_FLIGHT = 2


def acknowledge(client: IMAPClient, cfg: ImapConfig, uids: list[int]) -> None:
    """Tell the server these messages are stored, as `after_store` says (`move` or
    `none`: flags go through the Flagger)."""
    if not uids or cfg.after_store != "move":
        return
    if client.has_capability("MOVE"):
        client.move(uids, cfg.move_to)
    else:
        client.copy(uids, cfg.move_to)
        client.add_flags(uids, [b"\\Deleted"], silent=True)
        if client.has_capability("UIDPLUS"):
            client.uid_expunge(uids)


@dataclass
class _Run:
    """Fetched batches stored together."""

    batch: list[int] = field(default_factory=list)  # every UID asked for, ascending
    items: list[tuple[int, bytes]] = field(default_factory=list)  # those the server had
    size: int = 0
    future: Future[Stored] | None = None


@dataclass
class _Flagging:
    """A committed run's flags: set here already (no future), or queued in the Flagger."""

    uids: list[int]
    done: int | None  # the checkpoint may reach this UID once the flags are set
    future: Future[None] | None


class Pipeline:
    """Hands runs to the store and acknowledges each, in order, once it is committed.

    Only call `add` and `drain` while no other IMAP command is outstanding on `client`:
    finishing a run may send the move command. In `seen` and `keyword` mode flags are
    queued in `flagger` (the sync sends them ahead of its FETCHes), and the checkpoint
    waits for them.
    """

    def __init__(
        self,
        client: IMAPClient,
        cfg: ImapConfig,
        ckpt: Checkpointer,
        store: Store,
        flagger: Flagger | None = None,
    ) -> None:
        self.client, self.cfg, self.ckpt, self.store = client, cfg, ckpt, store
        self.flagger = flagger if flagger is not None else flagger_for(client, cfg)
        self.held = _Run()
        self.in_flight: deque[_Run] = deque()
        self.flagging: deque[_Flagging] = deque()
        self.stored = 0  # new messages among the runs committed so far

    def add(self, batch: list[int], items: list[tuple[int, bytes]]) -> None:
        """One fetched batch: `items` are the (uid, raw) the server still had of `batch`."""
        size = sum(len(raw) for _uid, raw in items)
        if self.held.batch and self.held.size + size > STORE_BYTES:
            self._submit()
        self.held.batch.extend(batch)
        self.held.items.extend(items)
        self.held.size += size
        while self.in_flight and self.in_flight[0].future.done():  # type: ignore[union-attr]
            self._finish(self.in_flight.popleft())
        self._settle(wait=False)
        # An idle store takes what there is (the first batch goes alone, so storing
        # starts at once); a busy one gets runs of STORE_CHUNK.
        if len(self.held.batch) >= STORE_CHUNK or not self.in_flight:
            self._submit()

    def _submit(self) -> None:
        while len(self.in_flight) >= IN_FLIGHT:
            self._finish(self.in_flight.popleft())
        run, self.held = self.held, _Run()
        run.future = self.store.submit(run.items)
        self.in_flight.append(run)

    def drain(self) -> None:
        """Store what is held, acknowledge every run and wait for its flags."""
        if self.held.batch:
            self._submit()
        while self.in_flight:
            self._finish(self.in_flight.popleft())
            if self.flagger is not None:
                # The server sets these flags while the store commits the next run.
                self.flagger.collect()
                self.flagger.send(whole=True)
        self._settle(wait=True)

    def _finish(self, run: _Run) -> None:
        """Wait for the run's commit, then acknowledge it (one command per run). Only
        committed messages are ever flagged or moved."""
        assert run.future is not None
        try:
            results, failure = run.future.result()
        except BaseException:
            # The store itself is gone (a child process that died): what it confirmed
            # before still gets its flags and checkpoint.
            self._settle_before_failing()
            raise
        items, batch = run.items, run.batch
        uids = [uid for uid, _raw in items[: len(results)]]
        # Everything below the first message not stored is done (stored or vanished).
        limit = items[len(results)][0] if failure is not None else batch[-1] + 1
        done = [uid for uid in batch if uid < limit]
        flagging = _Flagging(uids, done[-1] if done else None, None)
        if self.flagger is not None:
            flagging.future = self.flagger.submit(uids)
        else:
            acknowledge(self.client, self.cfg, uids)
        self.flagging.append(flagging)
        if failure is not None:
            self._settle_before_failing()
            raise failure
        self.stored += sum(1 for r in results if not r.duplicate)

    def _settle(self, *, wait: bool) -> None:
        """Advance the checkpoint past the runs whose flags are set, oldest first;
        `wait`: set every queued flag now (nothing else may be outstanding)."""
        if wait and self.flagger is not None:
            self.flagger.flush()
        while self.flagging:
            flagging = self.flagging[0]
            if flagging.future is not None:
                if not flagging.future.done():
                    return
                flagging.future.result()  # a refused STORE fails the sync here
            self.flagging.popleft()
            if flagging.done is not None:
                self.ckpt.done(flagging.done)

    def _settle_before_failing(self) -> None:
        """`_settle(wait=True)` on the way out of a failure, which stays the one raised."""
        try:
            self._settle(wait=True)
        except Exception as exc:
            log.warning("imap %s: flags of stored mail not set: %s", self.cfg.name, exc)

    def close(self) -> None:
        """After an error (IMAP or storage): let the runs in flight finish, so no commit
        is torn down (they are simply fetched again next time)."""
        for run in self.in_flight:
            if run.future is not None:
                run.future.exception()
