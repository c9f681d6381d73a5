"""IMAP into PostgreSQL: two pollers on one mailbox store each message once.

A team that moves to PostgreSQL often runs the gateway on two machines against one
mailbox. Both fetch the same UIDs; the unique dedupe key makes one of them see a
duplicate, and the checkpoint only ever moves forward.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from gateway.config import Config
from gateway.inbound.imap.poller import poll_once
from storage.models import ImapCheckpoint, Message
from tests.support.dovecot import Dovecot, folder_state, mailbox_section, make_message, password_env
from tests.support.postgres import pg_bindir

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(pg_bindir() is None, reason="PostgreSQL binaries are not installed"),
]


def test_two_pollers_store_every_message_once_on_postgres(
    dovecot: Dovecot,
    make_config: Callable[..., Config],
    pg_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var, value in password_env(dovecot).items():
        monkeypatch.setenv(var, value)
    dovecot.append([make_message(i, size=1500) for i in range(1200)])
    section: dict[str, Any] = mailbox_section(dovecot, after_store="keyword", keyword="$Stored")
    cfg = make_config(imap=[section]).imap[0]
    new: list[int] = []
    errors: list[BaseException] = []

    def poller() -> None:
        try:
            new.append(poll_once(cfg, pg_engine))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=poller) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and sum(new) == 1200
    with Session(pg_engine) as session:
        counts = Counter(m.message_id for m in session.exec(select(Message)).all())
        ckpt = session.exec(select(ImapCheckpoint)).one()
    assert len(counts) == 1200 and set(counts.values()) == {1}
    assert ckpt.last_uid == 1200
    assert all(b"$Stored" in flags for flags in folder_state(dovecot).values())
    assert poll_once(cfg, pg_engine) == 0
