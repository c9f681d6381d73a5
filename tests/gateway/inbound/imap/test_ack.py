"""Flags set on a second connection during a long sync, and the sync's own fallback."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

import gateway.inbound.imap.ack as imap_ack
from gateway.config import Config
from gateway.inbound.imap.auth import ImapConnectError
from gateway.inbound.imap.poller import poll_once
from storage.models import ImapCheckpoint, Message
from tests.support.dovecot import Dovecot, folder_state, make_message

TOTAL = 1200  # above ack.MIN_MESSAGES


@pytest.fixture
def mailbox_config(mailbox_config: Callable[..., Config]) -> Callable[..., Config]:
    """The shared factory (conftest), with batches of 50."""
    return functools.partial(mailbox_config, batch_size=50)


def all_stored_once_flagged_and_checkpointed(engine: Engine, dovecot: Dovecot, flag: bytes) -> bool:
    with Session(engine) as session:
        ids = session.exec(select(Message.message_id)).all()
        last = session.exec(select(ImapCheckpoint)).one().last_uid
    flags = folder_state(dovecot)
    return (
        len(ids) == len(set(ids)) == TOTAL
        and last == TOTAL
        and len(flags) == TOTAL
        and all(flag in f for f in flags.values())
    )


@pytest.mark.parametrize(("mode", "flag"), [("keyword", b"$Stored"), ("seen", b"\\Seen")])
def test_a_long_sync_sets_its_flags_on_a_second_connection(
    mode: str,
    flag: bytes,
    dovecot: Dovecot,
    mailbox_config: Callable[..., Config],
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dovecot.append([make_message(i, size=1500) for i in range(TOTAL)])
    flagged: list[int] = []
    real = imap_ack.Acker._flag

    def spy(self: imap_ack.Acker, uids: list[int]) -> None:
        real(self, uids)
        flagged.extend(uids)

    monkeypatch.setattr(imap_ack.Acker, "_flag", spy)
    cfg = mailbox_config(after_store=mode, keyword="$Stored").imap[0]

    assert poll_once(cfg, engine) == TOTAL
    assert sorted(flagged) == list(range(1, TOTAL + 1))
    assert all_stored_once_flagged_and_checkpointed(engine, dovecot, flag)
    assert poll_once(cfg, engine) == 0


def test_when_the_second_connection_is_refused_the_sync_flags_on_its_own(
    dovecot: Dovecot,
    mailbox_config: Callable[..., Config],
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    dovecot.append([make_message(i, size=1500) for i in range(TOTAL)])

    def refused(cfg: Any) -> Any:
        raise ImapConnectError("too many connections")

    monkeypatch.setattr(imap_ack, "connect", refused)
    caplog.set_level(logging.WARNING, logger="gateway.inbound.imap")
    cfg = mailbox_config(after_store="keyword", keyword="$Stored").imap[0]

    assert poll_once(cfg, engine) == TOTAL
    assert all_stored_once_flagged_and_checkpointed(engine, dovecot, b"$Stored")
    assert any("no second connection" in r.getMessage() for r in caplog.records)


def test_short_syncs_and_moves_keep_to_one_connection(
    mailbox_config: Callable[..., Config],
) -> None:
    keyword = mailbox_config(after_store="keyword", keyword="$Stored").imap[0]
    move = mailbox_config(after_store="move", move_to="Stored").imap[0]
    assert imap_ack.acker_for(keyword, 1, imap_ack.MIN_MESSAGES - 1) is None
    assert imap_ack.acker_for(move, 1, TOTAL) is None
