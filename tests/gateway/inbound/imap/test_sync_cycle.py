"""One sync cycle against a real Dovecot: what is new, what gets flagged, what never repeats."""

from __future__ import annotations

import io
import logging
import sys
from collections import Counter
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

import gateway.inbound.imap.checkpoint as imap_checkpoint
import gateway.inbound.imap.progress as imap_progress
import gateway.inbound.imap.store as imap_store
import gateway.inbound.imap.sync as imap_sync
from gateway.config import Config, ImapConfig
from gateway.inbound.imap.poller import ImapError, backfill, poll_once
from storage.models import ImapCheckpoint, Message, MessageState
from tests.support.dovecot import (
    Dovecot,
    folder_state,
    make_message,
)

SEEN = b"\\Seen"


def stored(engine: Engine) -> list[Message]:
    with Session(engine) as session:
        return list(session.exec(select(Message)).all())


def checkpoint(engine: Engine, folder: str = "INBOX") -> ImapCheckpoint:
    with Session(engine) as session:
        row = session.exec(select(ImapCheckpoint).where(ImapCheckpoint.folder == folder)).one()
        return row


def mids(engine: Engine) -> Counter[str]:
    return Counter(m.message_id or "" for m in stored(engine))


@pytest.mark.parametrize("after_store", ["seen", "keyword", "move"])
def test_200_messages_are_stored_once_and_acknowledged_as_configured(
    after_store: str,
    dovecot: Dovecot,
    mailbox_config: Callable[..., Config],
    engine: Engine,
) -> None:
    dovecot.append([make_message(i) for i in range(200)])
    cfg = mailbox_config(after_store=after_store, keyword="$Stored", move_to="Stored").imap[0]

    assert poll_once(cfg, engine) == 200
    assert poll_once(cfg, engine) == 0

    counts = mids(engine)
    assert len(counts) == 200 and set(counts.values()) == {1}
    assert all(m.source == "imap:support" and m.mailbox == "support" for m in stored(engine))
    inbox = folder_state(dovecot)
    if after_store == "seen":
        assert len(inbox) == 200 and all(SEEN in f for f in inbox.values())
    elif after_store == "keyword":
        assert len(inbox) == 200
        assert all(b"$Stored" in f and SEEN not in f for f in inbox.values())
    else:
        assert inbox == {} and len(folder_state(dovecot, "Stored")) == 200
    row = checkpoint(engine)
    assert row.last_uid == 200 and row.last_sync_at is not None and row.last_error is None


def test_move_mode_keeps_moving_new_mail(
    dovecot: Dovecot, mailbox_config: Callable[..., Config], engine: Engine
) -> None:
    dovecot.append([make_message(i) for i in range(6)])
    cfg = mailbox_config(after_store="move", move_to="Stored").imap[0]

    assert poll_once(cfg, engine) == 6
    dovecot.append([make_message(i, prefix="later") for i in range(5)])
    assert poll_once(cfg, engine) == 5

    assert folder_state(dovecot) == {}
    assert len(folder_state(dovecot, "Stored")) == 11
    assert len(mids(engine)) == 11


def test_mail_marked_seen_by_another_client_is_still_ingested(
    dovecot: Dovecot, mailbox_config: Callable[..., Config], engine: Engine
) -> None:
    dovecot.append([make_message(i) for i in range(3)])
    cfg = mailbox_config(after_store="keyword").imap[0]
    poll_once(cfg, engine)
    dovecot.append([make_message(i, prefix="read-elsewhere") for i in range(4)])
    other = dovecot.client()
    other.select_folder("INBOX")
    other.add_flags(other.search(["UNSEEN"]), [SEEN])

    assert poll_once(cfg, engine) == 4
    assert sum(1 for mid in mids(engine) if mid.startswith("read-elsewhere")) == 4


def test_fetching_never_marks_mail_seen(
    dovecot: Dovecot, mailbox_config: Callable[..., Config], engine: Engine
) -> None:
    dovecot.append([make_message(i) for i in range(5)])
    cfg = mailbox_config(after_store="none").imap[0]

    assert poll_once(cfg, engine) == 5
    assert all(SEEN not in f for f in folder_state(dovecot).values())
    # With no flag to rely on, the checkpoint alone keeps the next cycle from refetching.
    assert poll_once(cfg, engine) == 0
    assert checkpoint(engine).last_uid == 5


def test_uidvalidity_change_rescans_without_duplicates(
    dovecot: Dovecot, mailbox_config: Callable[..., Config], engine: Engine
) -> None:
    messages = [make_message(i) for i in range(20)]
    dovecot.append(messages, folder="Support")
    cfg = mailbox_config(folder="Support").imap[0]
    assert poll_once(cfg, engine) == 20
    before = checkpoint(engine, "Support").uidvalidity

    other = dovecot.client()
    other.delete_folder("Support")
    other.create_folder("Support")
    dovecot.append([*messages[:10], make_message(99, prefix="after-recreate")], folder="Support")

    assert poll_once(cfg, engine) == 1
    row = checkpoint(engine, "Support")
    assert row.uidvalidity != before and row.last_uid == 11
    counts = mids(engine)
    assert len(counts) == 21 and set(counts.values()) == {1}
    assert all(SEEN in f for f in folder_state(dovecot, "Support").values())


def test_unparseable_message_is_stored_flagged_and_then_shunted(
    dovecot: Dovecot, mailbox_config: Callable[..., Config], engine: Engine
) -> None:
    from gateway.conversation.pipeline import AnalysisRunner

    dovecot.append([b"\r\n   \r\n", make_message(1)])
    config = mailbox_config()
    cfg = config.imap[0]

    assert poll_once(cfg, engine) == 2
    assert all(SEEN in f for f in folder_state(dovecot).values())
    assert poll_once(cfg, engine) == 0  # no loop on the bad one

    AnalysisRunner(config, engine).run_once()
    by_mid = {m.message_id: m for m in stored(engine)}
    bad = by_mid[None]
    assert bad.state == MessageState.SHUNTED and "parse" in (bad.error or "")
    assert by_mid["msg-1@customer.example.org"].state != MessageState.SHUNTED


def test_storage_failure_flags_only_what_was_stored(
    dovecot: Dovecot,
    mailbox_config: Callable[..., Config],
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dovecot.append([make_message(i) for i in range(10)])
    cfg = mailbox_config(batch_size=10).imap[0]
    real_ingest, real_batch = imap_store.ingest, imap_store.ingest_prepared
    calls = 0

    def batch_fails(*args: Any, **kwargs: Any) -> Any:
        raise OSError("disk full")

    def fourth_fails(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 4:
            raise OSError("disk full")
        return real_ingest(*args, **kwargs)

    # The group commit fails, the one-by-one retry stores three, then the disk is full.
    monkeypatch.setattr(imap_store, "ingest_prepared", batch_fails)
    monkeypatch.setattr(imap_store, "ingest", fourth_fails)
    with pytest.raises(ImapError, match="disk full"):
        poll_once(cfg, engine)

    flags = folder_state(dovecot)
    assert [uid for uid, f in sorted(flags.items()) if SEEN in f] == [1, 2, 3]
    row = checkpoint(engine)
    assert row.last_uid == 3 and "disk full" in (row.last_error or "")
    assert len(mids(engine)) == 3

    monkeypatch.setattr(imap_store, "ingest", real_ingest)
    monkeypatch.setattr(imap_store, "ingest_prepared", real_batch)
    assert poll_once(cfg, engine) == 7
    assert len(mids(engine)) == 10 and all(SEEN in f for f in folder_state(dovecot).values())


def test_checkpoint_lags_safely_behind_flags(
    dovecot: Dovecot,
    mailbox_config: Callable[..., Config],
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A crash after flagging but before the checkpoint moved only re-fetches."""
    cfg = mailbox_config(batch_size=2, after_store="keyword", keyword="$Stored").imap[0]
    dovecot.append([make_message(i) for i in range(2)])
    assert poll_once(cfg, engine) == 2
    dovecot.append([make_message(i) for i in range(2, 6)])
    monkeypatch.setattr(imap_checkpoint, "CHECKPOINT_INTERVAL", 3600.0)
    real_flush = imap_checkpoint.Checkpointer.flush

    def crash(self: Any) -> None:
        raise KeyboardInterrupt  # like a SIGKILL: nothing after this point runs

    monkeypatch.setattr(imap_checkpoint.Checkpointer, "flush", crash)
    with pytest.raises(KeyboardInterrupt):
        poll_once(cfg, engine)
    assert all(b"$Stored" in f for f in folder_state(dovecot).values())
    assert checkpoint(engine).last_uid == 2

    monkeypatch.setattr(imap_checkpoint.Checkpointer, "flush", real_flush)
    assert poll_once(cfg, engine) == 0
    assert checkpoint(engine).last_uid == 6 and len(mids(engine)) == 6


def test_backfill_since_takes_only_recent_history_then_polls_new_mail(
    dovecot: Dovecot, mailbox_config: Callable[..., Config], engine: Engine
) -> None:
    client = dovecot.client()
    for i, when in enumerate(["2024-01-05", "2024-03-01", "2026-11-01", "2026-11-20"]):
        stamp = date.fromisoformat(when)
        client.append("INBOX", make_message(i, prefix="hist"), msg_time=_at(stamp))
    config = mailbox_config()

    assert backfill(config, engine, "support", since=date(2026, 1, 1), progress=False) == 2
    assert sorted(mids(engine)) == ["hist-2@customer.example.org", "hist-3@customer.example.org"]
    assert checkpoint(engine).last_uid == 4  # older history is deliberately left behind
    dovecot.append([make_message(7, prefix="new")])
    assert poll_once(config.imap[0], engine) == 1
    # A full backfill later picks up what the dated one skipped, without duplicates.
    assert backfill(config, engine, "support", since=None, progress=False) == 2
    assert len(mids(engine)) == 5


def test_backfill_since_config_applies_on_first_start(
    dovecot: Dovecot, mailbox_config: Callable[..., Config], engine: Engine
) -> None:
    client = dovecot.client()
    client.append("INBOX", make_message(1, prefix="old"), msg_time=_at(date(2020, 1, 1)))
    client.append("INBOX", make_message(2, prefix="recent"), msg_time=_at(date(2026, 11, 1)))
    cfg = mailbox_config(backfill_since="2026-01-01").imap[0]

    assert poll_once(cfg, engine) == 1
    assert list(mids(engine)) == ["recent-2@customer.example.org"]


def test_unknown_mailbox_name_is_a_clear_error(
    mailbox_config: Callable[..., Config], engine: Engine
) -> None:
    with pytest.raises(
        ValueError, match=r"no \[\[imap\]\] mailbox named 'nope' \(known: support\)"
    ):
        backfill(mailbox_config(), engine, "nope", since=None, progress=False)


def test_wrong_password_is_recorded_and_raised(
    mailbox_config: Callable[..., Config], engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SG_TEST_IMAP_PW_ALICE", "not-the-password")
    cfg: ImapConfig = mailbox_config().imap[0]

    with pytest.raises(ImapError, match=r"authentication failed for a\*\*\*"):
        poll_once(cfg, engine)
    row = checkpoint(engine)
    assert "authentication failed" in (row.last_error or "") and row.last_error_at is not None
    assert "not-the-password" not in (row.last_error or "")


def _at(day: date) -> Any:
    from datetime import UTC, datetime

    return datetime(day.year, day.month, day.day, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [
        ({1: 10, 2: 10, 3: 10, 4: 10, 5: 10}, [[1, 2], [3, 4], [5]]),  # count bound
        ({1: 60, 2: 50, 3: 10, 4: 90, 5: 10}, [[1], [2, 3], [4, 5]]),  # byte bound
        ({1: 500, 2: 10, 3: 10, 4: 10, 5: 10}, [[1], [2, 3], [4, 5]]),  # a giant goes alone
    ],
)
def test_batches_respect_count_and_bytes(sizes: dict[int, int], expected: list[list[int]]) -> None:
    assert list(imap_sync.batches(sorted(sizes), sizes, max_count=2, max_bytes=100)) == expected


def test_large_messages_are_fetched_in_small_batches(
    dovecot: Dovecot,
    mailbox_config: Callable[..., Config],
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dovecot.append([make_message(i, size=3000) for i in range(12)])
    monkeypatch.setattr(imap_sync, "MAX_BATCH_BYTES", 7000)  # two of these per FETCH
    fetched: list[int] = []
    real_fetch = imap_sync.BodyFetch

    def spy(client: Any, batch: list[int]) -> Any:
        fetched.append(len(batch))
        return real_fetch(client, batch)

    monkeypatch.setattr(imap_sync, "BodyFetch", spy)

    assert poll_once(mailbox_config(batch_size=50).imap[0], engine) == 12
    assert fetched == [2] * 6


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_backfill_on_a_terminal_draws_a_progress_bar(
    dovecot: Dovecot,
    mailbox_config: Callable[..., Config],
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dovecot.append([make_message(i) for i in range(30)])
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)

    assert backfill(mailbox_config(), engine, "support", since=None, progress=True) == 30
    assert "imap support" in terminal.getvalue() and "30/30" in terminal.getvalue()


def test_backfill_without_a_terminal_logs_instead(
    dovecot: Dovecot,
    mailbox_config: Callable[..., Config],
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(imap_progress, "LOG_EVERY", 10)
    dovecot.append([make_message(i) for i in range(30)])
    caplog.set_level(logging.INFO, logger="gateway.inbound.imap")

    assert backfill(mailbox_config(), engine, "support", since=None, progress=True) == 30
    lines = [r.getMessage() for r in caplog.records]
    assert "imap support: 30 messages to fetch" in lines
    assert "imap support: fetched 30 of 30" in lines


def test_missing_folder_is_a_clear_error(
    mailbox_config: Callable[..., Config], engine: Engine
) -> None:
    cfg = mailbox_config(folder="Support.Missing").imap[0]

    with pytest.raises(ImapError, match=r"said no \(folder 'Support.Missing'\).*(?i:exist)"):
        poll_once(cfg, engine)
    assert "Support.Missing" in (checkpoint(engine, "Support.Missing").last_error or "")
