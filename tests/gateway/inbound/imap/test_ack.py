"""Flags sent ahead of each FETCH on the fetching connection: the queue's logic by hand,
then against a real Dovecot, refusal included."""

from __future__ import annotations

import functools
import imaplib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from imapclient.exceptions import IMAPClientError
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

import gateway.inbound.imap.ack as imap_ack
from gateway.config import Config
from gateway.inbound.imap.ack import Flagger, uid_set
from gateway.inbound.imap.auth import ImapError
from gateway.inbound.imap.poller import poll_once
from storage.models import ImapCheckpoint, Message
from tests.support.dovecot import Dovecot, folder_state, make_message

TOTAL = 1200


class FakeImap:
    """imaplib's two calls the Flagger makes; answers OK unless told otherwise."""

    debug = 0
    error = imaplib.IMAP4.error

    abort = imaplib.IMAP4.abort

    def __init__(self, refuse: set[str] | None = None, lost: bool = False) -> None:
        self.sent: list[str] = []
        self.refuse = refuse or set()
        self.lost = lost

    def _command(self, *args: Any) -> str:
        self.sent.append(args[2])  # UID STORE <set> +FLAGS.SILENT (flag)
        return f"T{len(self.sent)}"

    def _command_complete(self, name: str, tag: str) -> tuple[str, list[bytes]]:
        if self.lost:
            raise self.abort("socket error: EOF")
        return ("NO", [b"refused"]) if tag in self.refuse else ("OK", [b"done"])


def flagger(cfg: Config, imap: FakeImap, chunk: int) -> Flagger:
    client: Any = type("Client", (), {"_imap": imap})()
    return Flagger(client, cfg.imap[0], chunk)


@pytest.fixture
def cfg(mailbox_config: Callable[..., Config]) -> Config:
    return mailbox_config(after_store="keyword", keyword="$Stored")


def test_uid_sets_write_consecutive_uids_as_ranges() -> None:
    assert uid_set([1, 2, 3, 5, 7, 8]) == "1:3,5,7:8"
    assert uid_set([4]) == "4"


@given(st.lists(st.integers(1, 400), min_size=1, unique=True))
def test_a_uid_set_names_exactly_its_uids(uids: list[int]) -> None:
    named: list[int] = []
    for part in uid_set(sorted(uids)).split(","):
        low, _, high = part.partition(":")
        named.extend(range(int(low), int(high or low) + 1))
    assert named == sorted(uids)


def test_a_run_is_flagged_only_once_every_piece_of_it_is_answered(cfg: Config) -> None:
    imap = FakeImap()
    flags = flagger(cfg, imap, chunk=3)
    first, second = flags.submit([1, 2, 3, 4, 5]), flags.submit([6, 7])
    flags.send()
    flags.send()  # one STORE at a time: nothing more goes out before its answer
    assert imap.sent == ["1:3"]
    flags.collect()
    assert not first.done()
    flags.send()
    flags.collect()
    assert imap.sent == ["1:3", "4:6"] and first.done() and not second.done()
    flags.flush()
    assert imap.sent == ["1:3", "4:6", "7"] and second.done()
    assert flags.submit([]).done()  # a run with nothing stored waits for no flag


def test_a_refused_store_fails_its_runs_and_every_run_queued_after(cfg: Config) -> None:
    imap = FakeImap(refuse={"T2"})
    flags = flagger(cfg, imap, chunk=2)
    runs = [flags.submit([1, 2]), flags.submit([3, 4]), flags.submit([5, 6])]
    flags.send()
    flags.collect()
    flags.send()
    with pytest.raises(IMAPClientError, match="STORE failed"):
        flags.collect()
    assert runs[0].result() is None
    assert all(isinstance(run.exception(), IMAPClientError) for run in runs[1:])
    flags.flush()
    assert imap.sent == ["1:2", "3:4"]  # nothing is sent after a refusal


def test_a_connection_lost_during_a_store_is_not_reported_as_a_refusal(cfg: Config) -> None:
    flags = flagger(cfg, FakeImap(lost=True), chunk=2)
    flags.submit([1, 2])
    flags.send()
    with pytest.raises(imaplib.IMAP4.abort, match="EOF"):
        flags.collect()


@pytest.fixture
def mailbox_config(mailbox_config: Callable[..., Config]) -> Callable[..., Config]:
    """The shared factory (conftest), with batches of 50."""
    return functools.partial(mailbox_config, batch_size=50)


def state(engine: Engine, dovecot: Dovecot, flag: bytes) -> tuple[int, int, int, int]:
    """(messages, distinct Message-IDs, checkpoint, messages flagged on the server)."""
    with Session(engine) as session:
        ids = session.exec(select(Message.message_id)).all()
        last = session.exec(select(ImapCheckpoint)).one().last_uid
    flags = folder_state(dovecot)
    return len(ids), len(set(ids)), last, sum(flag in f for f in flags.values())


@pytest.mark.parametrize(("mode", "flag"), [("keyword", b"$Stored"), ("seen", b"\\Seen")])
def test_a_long_sync_flags_between_its_fetches_on_one_connection(
    mode: str,
    flag: bytes,
    dovecot: Dovecot,
    mailbox_config: Callable[..., Config],
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dovecot.append([make_message(i, size=1500) for i in range(TOTAL)])
    commands: list[str] = []
    real = imaplib.IMAP4._command  # type: ignore[attr-defined]

    def spy(self: imaplib.IMAP4, name: str, *args: Any) -> Any:
        commands.append(f"{name} {args[0]}" if name == "UID" else name)
        return real(self, name, *args)

    monkeypatch.setattr(imaplib.IMAP4, "_command", spy)
    cfg = mailbox_config(after_store=mode, keyword="$Stored").imap[0]

    assert poll_once(cfg, engine) == TOTAL
    monkeypatch.setattr(imaplib.IMAP4, "_command", real)
    assert state(engine, dovecot, flag) == (TOTAL, TOTAL, TOTAL, TOTAL)
    assert commands.count("LOGIN") == 1  # no second connection
    fetches = [i for i, c in enumerate(commands) if c == "UID FETCH"]
    stores = [i for i, c in enumerate(commands) if c == "UID STORE"]
    # Flags go out ahead of FETCHes while the sync runs, not only at its end: a third
    # run is handed over only once the first is committed, and its flags then queued.
    assert any(i < fetches[-1] for i in stores)
    assert poll_once(cfg, engine) == 0


def test_a_store_the_server_refuses_fails_the_sync_before_its_checkpoint(
    dovecot: Dovecot,
    mailbox_config: Callable[..., Config],
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dovecot.append([make_message(i, size=1500) for i in range(TOTAL)])
    cfg = mailbox_config(after_store="keyword", keyword="$Stored").imap[0]
    real = imap_ack.flag_name
    monkeypatch.setattr(imap_ack, "flag_name", lambda _cfg: b"\\NoSuchSystemFlag")

    with pytest.raises(ImapError, match="STORE failed"):
        poll_once(cfg, engine)
    stored, distinct, last, flagged = state(engine, dovecot, b"$Stored")
    assert last == 0 and flagged == 0 and 0 < stored == distinct  # committed, not flagged

    monkeypatch.setattr(imap_ack, "flag_name", real)
    assert poll_once(cfg, engine) == TOTAL - stored  # the rest; the stored are duplicates
    assert state(engine, dovecot, b"$Stored") == (TOTAL, TOTAL, TOTAL, TOTAL)
