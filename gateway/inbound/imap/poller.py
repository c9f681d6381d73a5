"""IMAP pollers: one thread per `[[imap]]` mailbox, each syncing then waiting for news.

A poller is a loop of connect → sync → wait (IDLE, or a poll interval when the server
or config says no IDLE) → sync …, wrapped in reconnect-with-backoff. The loop never
dies: a wrong password or an unreachable server is recorded in the mailbox's checkpoint
row (`status` shows it) and logged once per change of state, not once per retry, and
other mailboxes run in their own threads unaffected. Every wait is cut into ~1 s slices
so that setting the shared `stop` event ends the thread within about two seconds, even
in the middle of IDLE. The sync itself (what is new, crash windows) is in
`gateway.inbound.imap.sync`; connecting and secrets are in `gateway.inbound.imap.auth`;
how a failure is worded, grouped and backed off from is in `failures.py`.
"""

from __future__ import annotations

import argparse
import logging
import select
import signal
import sys
import threading
import time
from datetime import date
from types import FrameType
from typing import Any

from imapclient import IMAPClient
from sqlalchemy.engine import Engine

from gateway.config import Config, ConfigError, ImapConfig, find_config_path, load_config
from gateway.inbound.imap.auth import ImapConnectError, ImapError, close, connect, redact
from gateway.inbound.imap.checkpoint import record_sync
from gateway.inbound.imap.child import store_for
from gateway.inbound.imap.failures import Backoff, describe, problem_kind
from gateway.inbound.imap.progress import LogProgress, Progress, RichProgress
from gateway.inbound.imap.store import Store
from gateway.inbound.imap.sync import SyncResult, sync_folder

log = logging.getLogger(__name__)

BACKOFF_INITIAL = 1.0
BACKOFF_MAX = 300.0
IDLE_CHECK_SECONDS = 1.0
STOP_TIMEOUT_SECONDS = 1.0

__all__ = ["ImapConnectError", "ImapError", "MailboxPoller", "backfill", "poll_once", "run_pollers"]


class MailboxPoller:
    """Keeps one mailbox synced until `stop` is set."""

    def __init__(self, cfg: ImapConfig, engine: Engine, stop: threading.Event) -> None:
        self.cfg, self.engine, self.stop = cfg, engine, stop
        self.name = f"imap:{cfg.name}"
        self.backoff = Backoff(BACKOFF_INITIAL, BACKOFF_MAX)
        self._problem: str | None = None
        self._progress = LogProgress(cfg.name)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self._session()
            except Exception as exc:
                if self.stop.is_set():
                    log.debug("imap %s: error while stopping: %s", self.cfg.name, exc)
                    return
                self._failed(exc)
                self.stop.wait(self.backoff.next_delay())

    def _session(self) -> None:
        client = connect(self.cfg)
        try:
            while not self.stop.is_set():
                result = self.sync(client)
                if not result.complete:
                    return
                self._wait(client)
        finally:
            close(client)

    def sync(self, client: IMAPClient) -> SyncResult:
        result = sync_folder(client, self.cfg, self.engine, stop=self.stop, progress=self._progress)
        record_sync(self.engine, self.cfg.name, self.cfg.folder, error=None)
        self._recovered()
        if result.stored:
            log.info("imap %s: stored %d new message(s)", self.cfg.name, result.stored)
        return result

    def _wait(self, client: IMAPClient) -> None:
        if _announced_during_sync(client):
            return  # sync again at once: IDLE would not report this mail a second time
        if self.cfg.idle and client.has_capability("IDLE"):
            self._idle(client)
        else:
            self.stop.wait(self.cfg.poll_interval)
            if not self.stop.is_set():
                client.noop()

    def _idle(self, client: IMAPClient) -> None:
        # Re-issued before servers drop idlers (RFC 2177 allows 30 minutes); a peer that
        # vanished without a FIN shows up at the latest then, as a timeout on DONE.
        deadline = time.monotonic() + self.cfg.idle_renew_seconds
        client.idle()
        eof_signs = 0
        while not self.stop.is_set() and time.monotonic() < deadline:
            responses = client.idle_check(timeout=IDLE_CHECK_SECONDS)
            if any(_is_exists(r) for r in responses):
                break
            eof_signs = eof_signs + 1 if not responses and _readable(client) else 0
            if eof_signs >= 3:
                # No DONE on a dead connection: it would only replace this error with EOF.
                raise ConnectionResetError("the server closed the connection during IDLE")
        if self.stop.is_set():
            # Shutting down: a server that went silent must not hold us for READ_TIMEOUT.
            client.socket().settimeout(STOP_TIMEOUT_SECONDS)
        client.idle_done()

    def _failed(self, exc: Exception) -> None:
        problem = describe(exc, self.cfg)
        try:
            record_sync(self.engine, self.cfg.name, self.cfg.folder, error=problem)
        except Exception:
            log.exception("imap %s: cannot record the error in storage", self.cfg.name)
        kind = problem_kind(exc)
        if kind == self._problem:
            log.debug("imap %s: still failing: %s", self.cfg.name, problem)
            return
        self._problem = kind
        known = kind in ("network", "auth", "config", "server")
        log.error(
            "imap %s: %s; retrying with backoff",
            self.cfg.name,
            problem,
            exc_info=None if known else exc,
        )

    def _recovered(self) -> None:
        failures = self.backoff.reset()
        if self._problem is not None:
            log.info(
                "imap %s: connected again as %s after %d failed attempt(s)",
                self.cfg.name,
                redact(self.cfg.username),
                failures,
            )
            self._problem = None


def _announced_during_sync(client: IMAPClient) -> bool:
    """Whether the server announced new mail (EXISTS) while we were syncing.

    A message delivered during our UID SEARCH is announced in that command's response,
    which imaplib files away unreported; the server then considers it told and IDLE
    stays silent about it until the next renewal. SELECT starts the list afresh with the
    folder's count, so a second entry means mail arrived since. (imaplib's
    `untagged_responses` is the only place this is kept; a missing attribute just
    means we cannot tell, and the next IDLE or poll will find the mail.)
    """
    untagged = getattr(getattr(client, "_imap", None), "untagged_responses", None)
    if not isinstance(untagged, dict):
        return False
    return len(untagged.pop("EXISTS", [])) > 1


def _readable(client: IMAPClient) -> bool:
    """Whether the socket has something to read right now.

    imapclient's idle_check swallows EOF and returns no responses, so a connection the
    server closed would look like a quiet mailbox (and spin). A socket that is readable
    again and again right after idle_check found nothing has nothing left but the EOF.
    """
    readable, _w, _x = select.select([client.socket()], [], [], 0)
    return bool(readable)


def _is_exists(response: Any) -> bool:
    return isinstance(response, tuple) and len(response) >= 2 and response[1] == b"EXISTS"


def _mailbox(config: Config, name: str) -> ImapConfig:
    for cfg in config.imap:
        if cfg.name == name:
            return cfg
    known = ", ".join(m.name for m in config.imap) or "none configured"
    raise ConfigError(f"no [[imap]] mailbox named {name!r} (known: {known})")


def run_pollers(config: Config, engine: Engine, stop: threading.Event) -> list[threading.Thread]:
    """Start one daemon thread per `[[imap]]` mailbox; each ends soon after `stop` is set."""
    threads = []
    for cfg in config.imap:
        poller = MailboxPoller(cfg, engine, stop)
        thread = threading.Thread(target=poller.run, name=poller.name, daemon=True)
        thread.start()
        threads.append(thread)
    return threads


def _one_cycle(
    cfg: ImapConfig,
    engine: Engine,
    *,
    since: date | None = None,
    rescan: bool = False,
    progress: Progress | None = None,
    store: Store | None = None,
) -> int:
    try:
        client = connect(cfg)
        try:
            result = sync_folder(
                client, cfg, engine, since=since, rescan=rescan, progress=progress, store=store
            )
        finally:
            close(client)
    except Exception as exc:
        problem = describe(exc, cfg)
        record_sync(engine, cfg.name, cfg.folder, error=problem)
        if isinstance(exc, ImapError):
            raise
        raise ImapError(f"imap {cfg.name}: {problem}") from exc
    record_sync(engine, cfg.name, cfg.folder, error=None)
    return result.stored


def poll_once(config_mailbox: ImapConfig, engine: Engine) -> int:
    """Connect, store what is new, disconnect; return how many messages were new.

    Raises ImapError (after recording it in the checkpoint row) when the sync failed.
    """
    return _one_cycle(config_mailbox, engine)


def backfill(
    config: Config,
    engine: Engine,
    mailbox: str,
    *,
    since: date | None,
    progress: bool = True,
) -> int:
    """Fetch the folder's history (from `since`, else all of it); return how many were new.

    Stores in a child process when this process may fork one (`gateway.inbound.imap.child`).
    """
    cfg = _mailbox(config, mailbox)
    # The store process is forked first, while this process has no other thread (the
    # progress bar and the sync's writer start threads).
    with store_for(engine, cfg) as store:
        if progress and sys.stderr.isatty():
            with RichProgress(cfg.name) as bar:
                return _one_cycle(
                    cfg, engine, since=since, rescan=since is None, progress=bar, store=store
                )
        return _one_cycle(
            cfg,
            engine,
            since=since,
            rescan=since is None,
            progress=LogProgress(cfg.name),
            store=store,
        )


def main(argv: list[str] | None = None) -> int:
    """Run one mailbox's poller in the foreground until SIGTERM/SIGINT."""
    from storage.db import init_db, make_engine

    parser = argparse.ArgumentParser(prog="python -m gateway.inbound.imap.poller")
    parser.add_argument("--config", default=None, help="path to config.toml")
    parser.add_argument("--mailbox", required=True, help="name of the [[imap]] mailbox")
    args = parser.parse_args(argv)
    try:
        config = load_config(find_config_path(args.config))
        cfg = _mailbox(config, args.mailbox)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=config.logging.level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    engine = make_engine(config.database_url)
    init_db(engine)
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    MailboxPoller(cfg, engine, stop).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
