"""Flags for committed runs, sent on the fetching connection just ahead of each FETCH.

A server writes a run's flags while the client waits (Dovecot on maildir renames a file
per message: about 25 µs a message, 12 ms for a run of 500), and nothing is fetched
meanwhile. So during a sync in `seen` or `keyword` mode the flags of committed runs go
out in pieces, one `UID STORE … +FLAGS.SILENT` just before each FETCH, without waiting
for its answer: the server sets them, then answers the FETCH, and the client reads both
answers in one go (IMAP allows a client to send before reading; the server answers in
order), so the flags cost no round trip of their own. A second connection for the flags
was measured worse: the server then reports every flag it set to the fetching
connection as well, one line per message, which both sides pay for.

Nothing about the order changes: a run is queued here only after its commit, and the
sync advances the checkpoint only once all of its flags are answered OK
(`pipeline.py`). A STORE the server refuses fails the sync before any later checkpoint.
Moving stays a command of its own, sent and answered between FETCHes: a MOVE would
expunge under the FETCH.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from gateway.config import ImapConfig
from gateway.inbound.imap.fetch import untraced

MODES = ("seen", "keyword")
# The most UIDs one STORE names: short enough for any server's command line, even when
# the UIDs are scattered.
MAX_UIDS = 1000


def flag_name(cfg: ImapConfig) -> bytes:
    """The flag `after_store` names (`seen` or `keyword`)."""
    return b"\\Seen" if cfg.after_store == "seen" else cfg.keyword.encode("ascii")


def uid_set(uids: list[int]) -> str:
    """`uids` (ascending) as an IMAP sequence set: runs of consecutive UIDs as ranges."""
    parts: list[str] = []
    start = prev = uids[0]
    for uid in uids[1:]:
        if uid != prev + 1:
            parts.append(f"{start}:{prev}" if prev != start else str(start))
            start = uid
        prev = uid
    parts.append(f"{start}:{prev}" if prev != start else str(start))
    return ",".join(parts)


@dataclass
class _Queued:
    """A committed run's UIDs not yet sent, and the future its checkpoint waits on."""

    uids: list[int]
    future: Future[None]
    unanswered: int  # UIDs of the run whose STORE is not answered OK yet


class Flagger:
    """Flags committed runs on the fetching connection, a piece ahead of each FETCH.

    `submit` queues a run; `send` (just before a FETCH) sends a STORE for the next
    `chunk` queued UIDs; `collect` (once the FETCH is read) reads its answer and
    completes the futures of runs now fully flagged; `flush` flags all that is queued
    and waits (only while no other command is outstanding). At the end of a sync,
    `send(whole=True)` sends up to MAX_UIDS at once while the store commits the last
    runs.
    """

    def __init__(self, client: IMAPClient, cfg: ImapConfig, chunk: int) -> None:
        self.client, self.chunk = client, max(chunk, 1)
        self._flag = b"(" + flag_name(cfg) + b")"
        self._queue: deque[_Queued] = deque()
        self._sent: tuple[object, list[tuple[_Queued, int]]] | None = None

    def submit(self, uids: list[int]) -> Future[None]:
        """Queue a committed run's UIDs; the future completes once all are flagged."""
        future: Future[None] = Future()
        if uids:
            self._queue.append(_Queued(list(uids), future, len(uids)))
        else:
            future.set_result(None)
        return future

    def send(self, *, whole: bool = False) -> None:
        """Send a STORE for up to `chunk` queued UIDs (`whole`: MAX_UIDS), without
        reading its answer; nothing while the last STORE sent is unanswered."""
        if self._sent is not None or not self._queue:
            return
        limit = MAX_UIDS if whole else min(self.chunk, MAX_UIDS)
        pieces: list[tuple[_Queued, int]] = []
        uids: list[int] = []
        for queued in self._queue:
            take = queued.uids[: limit - len(uids)]
            if take:
                pieces.append((queued, len(take)))
                uids.extend(take)
            if len(uids) >= limit:
                break
        for queued, taken in pieces:
            del queued.uids[:taken]
        while self._queue and not self._queue[0].uids:
            self._queue.popleft()  # all sent: `pieces` holds it until the answer
        with untraced(self.client) as imap:
            tag = imap._command("UID", "STORE", uid_set(sorted(uids)), "+FLAGS.SILENT", self._flag)
        self._sent = (tag, pieces)

    def collect(self) -> None:
        """Read the answer of the STORE sent (raises IMAPClientError if refused)."""
        if self._sent is None:
            return
        (tag, pieces), self._sent = self._sent, None
        with untraced(self.client) as imap:
            try:
                typ, data = imap._command_complete("STORE", tag)
            except imap.abort:
                raise  # the connection is gone, which the server did not decide
            except imap.error as exc:  # BAD: imaplib raises rather than return it
                typ, data = "BAD", [str(exc).encode()]
        if typ != "OK":
            error = IMAPClientError(f"STORE failed: {data!r}")
            self._fail(error, pieces)
            raise error
        for queued, taken in pieces:
            queued.unanswered -= taken
            if queued.unanswered == 0:
                queued.future.set_result(None)

    def flush(self) -> None:
        """Flag everything queued, waiting for each answer."""
        self.collect()
        while self._queue:
            self.send(whole=True)
            self.collect()

    def _fail(self, error: Exception, pieces: list[tuple[_Queued, int]]) -> None:
        """Nothing queued will be flagged now: no checkpoint may wait for it."""
        for queued in [q for q, _t in pieces] + list(self._queue):
            if not queued.future.done():
                queued.future.set_exception(error)
        self._queue.clear()


def flagger_for(client: IMAPClient, cfg: ImapConfig) -> Flagger | None:
    """A Flagger for a sync in `seen` or `keyword` mode (two fetch batches a STORE)."""
    if cfg.after_store not in MODES:
        return None
    return Flagger(client, cfg, 2 * max(cfg.batch_size, 1))
