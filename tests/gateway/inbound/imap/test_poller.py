"""Long-running pollers against a real Dovecot: IDLE, polling, failures, restarts, SIGKILL."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

import gateway.inbound.imap.poller as imap
from gateway.config import Config
from storage.models import ImapCheckpoint, Message
from tests.support.dovecot import (
    Dovecot,
    folder_state,
    mailbox_section,
    make_message,
    password_env,
)

ROOT = Path(__file__).resolve().parents[4]


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def count(engine: Engine, mailbox: str | None = None) -> int:
    with Session(engine) as session:
        query = select(func.count()).select_from(Message)
        if mailbox:
            query = query.where(Message.mailbox == mailbox)
        return int(session.exec(query).one())


def row(engine: Engine, mailbox: str) -> ImapCheckpoint | None:
    with Session(engine) as session:
        return session.exec(select(ImapCheckpoint).where(ImapCheckpoint.mailbox == mailbox)).first()


def reached(engine: Engine, n: int) -> bool:
    return count(engine) >= n


def synced(engine: Engine, mailbox: str) -> bool:
    found = row(engine, mailbox)
    return found is not None and found.last_sync_at is not None


@pytest.fixture
def pollers(
    dovecot: Dovecot, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[Config], list[threading.Thread]]]:
    for var, value in password_env(dovecot).items():
        monkeypatch.setenv(var, value)
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start(config: Config) -> list[threading.Thread]:
        threads.extend(imap.run_pollers(config, engine, stop))
        return threads

    yield start
    stop.set()
    for thread in threads:
        thread.join(timeout=2.5)
    assert not any(t.is_alive() for t in threads), "a poller did not stop within 2.5 s"


def test_mail_appended_during_idle_arrives_within_seconds(
    dovecot: Dovecot, engine: Engine, make_config: Callable[..., Config], pollers: Any
) -> None:
    dovecot.append([make_message(i) for i in range(3)])
    # A ten-minute poll interval: only IDLE can deliver the new mail in time.
    pollers(make_config(imap=[mailbox_section(dovecot, idle=True, poll_interval=600.0)]))
    wait_for(lambda: synced(engine, "support") and count(engine) == 3, 10, "initial sync")
    time.sleep(0.3)  # let the poller enter IDLE

    dovecot.append([make_message(1, prefix="during-idle")])
    wait_for(lambda: count(engine) == 4, 5, "the message appended during IDLE")


def test_idle_is_renewed_before_the_server_timeout(
    dovecot: Dovecot,
    engine: Engine,
    make_config: Callable[..., Config],
    pollers: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="imapclient")
    section = mailbox_section(dovecot, idle=True, idle_renew_seconds=1, poll_interval=600.0)
    pollers(make_config(imap=[section]))
    wait_for(lambda: synced(engine, "support"), 10, "initial sync")

    def idles() -> int:
        return sum(r.getMessage().endswith(" IDLE'") for r in caplog.records)

    wait_for(lambda: idles() >= 3, 8, "IDLE to be re-issued twice")
    dovecot.append([make_message(1, prefix="after-renewals")])
    wait_for(lambda: count(engine) == 1, 5, "mail after IDLE renewals")


def test_mail_announced_during_a_search_is_not_left_for_the_next_renewal(
    dovecot: Dovecot,
) -> None:
    poller_side = dovecot.client()
    poller_side.select_folder("INBOX")
    poller_side.search(["UID", "1:*"])
    assert not imap._announced_during_sync(poller_side)

    poller_side.select_folder("INBOX")
    dovecot.append([make_message(1, prefix="racing")])
    # The server announces the new message with the SEARCH response (imaplib files it).
    poller_side.search(["UID", "1:*"])
    assert imap._announced_during_sync(poller_side)
    assert not imap._announced_during_sync(poller_side)  # reported once


def test_polling_without_idle_finds_new_mail(
    dovecot: Dovecot, engine: Engine, make_config: Callable[..., Config], pollers: Any
) -> None:
    pollers(make_config(imap=[mailbox_section(dovecot, idle=False, poll_interval=0.3)]))
    wait_for(lambda: synced(engine, "support"), 10, "initial sync")

    dovecot.append([make_message(i, prefix="polled") for i in range(2)])
    wait_for(lambda: count(engine) == 2, 5, "polled mail")


def test_stop_ends_a_poller_that_is_idling(
    dovecot: Dovecot,
    engine: Engine,
    make_config: Callable[..., Config],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var, value in password_env(dovecot).items():
        monkeypatch.setenv(var, value)
    stop = threading.Event()
    config = make_config(imap=[mailbox_section(dovecot, idle=True, poll_interval=600.0)])
    (thread,) = imap.run_pollers(config, engine, stop)
    wait_for(lambda: synced(engine, "support"), 10, "initial sync")
    time.sleep(0.5)

    stop.set()
    thread.join(timeout=2.5)
    assert not thread.is_alive()
    # It logged out rather than just dropping the connection.
    wait_for(lambda: "Logged out" in dovecot.log_text(), 5, "the logout in Dovecot's log")


def test_stop_ends_a_poller_whose_server_went_silent(
    dovecot: Dovecot,
    engine: Engine,
    make_config: Callable[..., Config],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var, value in password_env(dovecot).items():
        monkeypatch.setenv(var, value)
    stop = threading.Event()
    config = make_config(imap=[mailbox_section(dovecot, idle=True, poll_interval=600.0)])
    (thread,) = imap.run_pollers(config, engine, stop)
    wait_for(lambda: synced(engine, "support"), 10, "initial sync")
    time.sleep(0.3)
    (session,) = dovecot.session_pids()
    os.kill(session, signal.SIGSTOP)  # alive but mute, like a peer behind a dead NAT
    try:
        stop.set()
        thread.join(timeout=5)
        assert not thread.is_alive(), "DONE to a silent server held the poller"
    finally:
        os.kill(session, signal.SIGKILL)


def test_wrong_password_is_one_clear_error_and_other_mailboxes_keep_working(
    dovecot: Dovecot,
    engine: Engine,
    make_config: Callable[..., Config],
    pollers: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(imap, "BACKOFF_INITIAL", 0.1)
    monkeypatch.setenv("SG_TEST_BAD_PW", "wrong")
    dovecot.append([make_message(i) for i in range(5)])
    good = mailbox_section(dovecot, name="good", idle=True, poll_interval=600.0)
    bad = mailbox_section(dovecot, name="bad", username="bob", password_env="SG_TEST_BAD_PW")
    caplog.set_level(logging.INFO, logger="gateway")

    pollers(make_config(imap=[bad, good]))
    wait_for(lambda: count(engine, "good") == 5, 10, "the good mailbox")
    wait_for(lambda: dovecot.log_text().count("user=<bob>") >= 3, 10, "three login attempts")
    dovecot.append([make_message(9, prefix="still-flowing")])
    wait_for(lambda: count(engine, "good") == 6, 5, "new mail on the good mailbox")

    bad_row = row(engine, "bad")
    assert bad_row is not None and bad_row.last_sync_at is None
    assert "authentication failed for b***" in (bad_row.last_error or "")
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert "imap bad: authentication failed" in errors[0].getMessage()
    assert "wrong" not in errors[0].getMessage()
    good_row = row(engine, "good")
    assert good_row is not None and good_row.last_error is None


def test_server_restart_is_logged_once_and_polling_resumes(
    dovecot: Dovecot,
    engine: Engine,
    make_config: Callable[..., Config],
    pollers: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(imap, "BACKOFF_INITIAL", 0.1)
    monkeypatch.setattr(imap, "BACKOFF_MAX", 0.3)
    caplog.set_level(logging.INFO, logger="gateway")
    pollers(make_config(imap=[mailbox_section(dovecot, idle=True, poll_interval=600.0)]))
    wait_for(lambda: synced(engine, "support"), 10, "initial sync")

    assert dovecot.kill_sessions() == 1
    dovecot.stop()
    time.sleep(1.5)  # several reconnect attempts against a closed port
    dovecot.restart()
    dovecot.append([make_message(1, prefix="after-restart")])
    wait_for(lambda: count(engine) == 1, 10, "mail after the restart")

    def logged() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name.startswith("gateway.inbound.imap")]

    wait_for(lambda: any("connected again" in m for m in logged()), 5, "the recovery line")
    messages = logged()
    failures = [m for m in messages if "retrying with backoff" in m]
    # Lost, reset, refused, refused...: one network problem, one line, then one recovery.
    assert len(failures) == 1, messages
    assert "connection to 127.0.0.1" in failures[0] and "lost" in failures[0]
    assert sum("connected again" in m for m in messages) == 1


# --- a separate process, killed without warning ------------------------------------


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    return str(value)


def write_config(tmp_path: Path, db_path: Path, dovecot: Dovecot) -> Path:
    section = mailbox_section(
        dovecot, batch_size=20, after_store="move", move_to="Stored", idle=True
    )
    lines = ["[storage]", f"url = {toml_value(f'sqlite:///{db_path}')}", "[[imap]]"]
    lines += [f"{key} = {toml_value(value)}" for key, value in section.items()]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def start_poller(config: Path, dovecot: Dovecot, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **password_env(dovecot)}
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway.inbound.imap.poller",
                "--config",
                str(config),
                "--mailbox",
                "support",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def message_ids_in(dovecot: Dovecot, folder: str) -> list[bytes]:
    client = dovecot.client()
    client.select_folder(folder, readonly=True)
    uids = client.search("ALL")
    if not uids:
        return []
    field = b"BODY[HEADER.FIELDS (MESSAGE-ID)]"
    fetched = client.fetch(uids, [b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
    return [item[field].strip() for item in fetched.values()]


def test_sigkill_mid_batch_loses_and_duplicates_nothing(
    dovecot: Dovecot, engine: Engine, db_path: Path, tmp_path: Path
) -> None:
    # Enough mail that each kill lands mid-sync: runs of up to 500 are committed back to
    # back, so the count moves in steps of 500.
    total = 2000
    dovecot.append([make_message(i) for i in range(total)])
    config = write_config(tmp_path, db_path, dovecot)
    log = tmp_path / "poller.log"

    for kill_at in (60, 900):
        proc = start_poller(config, dovecot, log)
        try:
            wait_for(partial(reached, engine, kill_at), 30, f"{kill_at} stored messages")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        assert count(engine) < total, "the poller finished before it could be killed"

    proc = start_poller(config, dovecot, log)
    try:
        wait_for(lambda: count(engine) == total and not folder_state(dovecot), 30, "all mail")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, log.read_text()

    stored_ids = message_ids_in(dovecot, "Stored")
    assert len(stored_ids) == total and len(set(stored_ids)) == total
    with Session(engine) as session:
        ids = session.exec(select(Message.message_id)).all()
    assert len(ids) == total and len(set(ids)) == total
    checkpoint = row(engine, "support")
    assert checkpoint is not None and checkpoint.last_uid == total


def test_entry_point_names_an_unknown_mailbox(
    dovecot: Dovecot, db_path: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path, db_path, dovecot)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.inbound.imap.poller",
            "--config",
            str(config),
            "--mailbox",
            "sales",
        ],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert b"no [[imap]] mailbox named 'sales' (known: support)" in done.stderr


# Dovecot's own list without IDLE and MOVE: an older or stricter server.
PLAIN_CAPABILITIES = "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE UIDPLUS NAMESPACE MULTIAPPEND"


def test_server_without_idle_is_polled(
    dovecot_factory: Callable[..., Dovecot],
    engine: Engine,
    make_config: Callable[..., Config],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = dovecot_factory({"alice": "secret-a"}, capability=PLAIN_CAPABILITIES)
    monkeypatch.setenv("SG_TEST_IMAP_PW_ALICE", "secret-a")
    caplog.set_level(logging.DEBUG, logger="imapclient")
    stop = threading.Event()
    section = mailbox_section(server, idle=True, poll_interval=0.3)
    threads = imap.run_pollers(make_config(imap=[section]), engine, stop)
    try:
        wait_for(lambda: synced(engine, "support"), 10, "initial sync")
        server.append([make_message(1, prefix="polled")])
        wait_for(lambda: count(engine) == 1, 5, "polled mail")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=2.5)
    assert not any(r.getMessage().endswith(" IDLE'") for r in caplog.records)
    assert any(r.getMessage().endswith(" NOOP'") for r in caplog.records)


def test_move_without_the_move_extension_copies_then_expunges(
    dovecot_factory: Callable[..., Dovecot],
    engine: Engine,
    make_config: Callable[..., Config],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = dovecot_factory({"alice": "secret-a"}, capability=PLAIN_CAPABILITIES)
    monkeypatch.setenv("SG_TEST_IMAP_PW_ALICE", "secret-a")
    server.append([make_message(i) for i in range(8)])
    section = mailbox_section(server, after_store="move", move_to="Stored", batch_size=3)

    assert imap.poll_once(make_config(imap=[section]).imap[0], engine) == 8
    assert folder_state(server) == {}
    assert len(folder_state(server, "Stored")) == 8
