"""Flags for committed runs, set on a second connection while the first keeps fetching.

On the connection that fetches, the server writes a run's flags (Dovecot: about 25 µs a
message, 75 ms for 3000) while the client waits and nothing is fetched.
A long sync in `seen` or `keyword` mode therefore opens a second connection to the same
folder and sets the flags there, in a thread of their own (the wait is on the network,
so the interpreter lock is free meanwhile). The fetching connection then hears of each
change as an unsolicited `FETCH (FLAGS …)` line, which its reader skips (`fetch.py`).
Moving stays on the fetching connection: a MOVE would expunge under it.

Nothing about the order changes: a run is handed over only after its commit, and the
sync advances the checkpoint only once the flags are set (`pipeline.py`). If the
second connection cannot be opened, the sync sets the flags itself, as without it.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor

from imapclient import IMAPClient

from gateway.config import ImapConfig
from gateway.inbound.imap.auth import close, connect

log = logging.getLogger(__name__)

# Below this many messages a second login costs more than it saves.
MIN_MESSAGES = 1000
MODES = ("seen", "keyword")


class AckerUnavailable(Exception):
    """The second connection could not be opened; the caller flags on its own."""


def flag(client: IMAPClient, cfg: ImapConfig, uids: list[int]) -> None:
    """Set the flag `after_store` names (`seen` or `keyword`) on `uids`."""
    name = b"\\Seen" if cfg.after_store == "seen" else cfg.keyword.encode("ascii")
    client.add_flags(uids, [name], silent=True)


class Acker:
    """A second connection, opened in the background, that flags runs in order."""

    def __init__(self, cfg: ImapConfig, uidvalidity: int) -> None:
        self.cfg, self.uidvalidity = cfg, uidvalidity
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"imap-{cfg.name}")
        self._client: Future[IMAPClient] = self._thread.submit(self._open)

    def _open(self) -> IMAPClient:
        client = connect(self.cfg)
        try:
            status = client.select_folder(self.cfg.folder)
            if int(status[b"UIDVALIDITY"]) != self.uidvalidity:
                raise AckerUnavailable("the folder was renumbered (UIDVALIDITY) meanwhile")
        except BaseException:
            close(client)
            raise
        return client

    def submit(self, uids: list[int]) -> Future[None]:
        """Flag `uids` after the runs submitted before; raises AckerUnavailable (from
        the future) if the second connection could not be opened."""
        return self._thread.submit(self._flag, uids)

    def _flag(self, uids: list[int]) -> None:
        try:
            client = self._client.result()
        except Exception as exc:
            raise AckerUnavailable(str(exc)) from exc
        flag(client, self.cfg, uids)

    def close(self) -> None:
        self._thread.shutdown(wait=True)
        if self._client.exception() is None:
            close(self._client.result())
        else:
            log.warning(
                "imap %s: no second connection for flags (%s); flagged on the first",
                self.cfg.name,
                self._client.exception(),
            )


def acker_for(cfg: ImapConfig, uidvalidity: int, count: int) -> Acker | None:
    """An Acker for a sync of `count` messages, or None when it would not pay."""
    if cfg.after_store not in MODES or count < MIN_MESSAGES:
        return None
    return Acker(cfg, uidvalidity)
