"""The sender against a real aiosmtpd sink on 127.0.0.1.

Headers and body as sent, retries with backoff on 451 and on a relay that is down,
failure recorded on 550, the per-minute cap, and no duplicate when the sender is
SIGKILLed between the SMTP transaction and the database commit. Long Exchange
Message-IDs go out verbatim; internationalised addresses go out as punycode or over
SMTPUTF8, or fail clearly; an unexpected error never leaves a row in `sending`.
"""

from __future__ import annotations

import os
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from gateway.config import Config
from gateway.outbound.sender import SenderRunner, _tls_context, backoff
from storage.db import session_scope
from storage.models import (
    AuditLog,
    Draft,
    DraftState,
    Message,
    MessageState,
    Outbox,
    OutboxState,
    utcnow,
)
from tests.support.net import free_port
from tests.support.relay import (
    BODY,
    SinkHandler,
    released,
    running_sink,
    sender_config,
)

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def sink() -> Iterator[tuple[SinkHandler, int]]:
    with running_sink() as started:
        yield started


def outbox(engine: Engine, outbox_id: int) -> Outbox:
    with Session(engine) as session:
        row = session.get(Outbox, outbox_id)
        assert row is not None
        return row


def test_sent_message_has_threading_headers_and_intact_body(
    engine: Engine, make_config: Callable[..., Config], sink: tuple[SinkHandler, int]
) -> None:
    handler, port = sink
    config = sender_config(make_config, port)
    outbox_id = released(engine)
    assert SenderRunner(config, engine).run_once() == 1

    (msg,) = handler.parsed()
    row = outbox(engine, outbox_id)
    assert row.state == OutboxState.SENT and row.sent_at is not None
    assert msg["Message-ID"] == row.message_id
    assert msg["In-Reply-To"] == "<cust-1@customer.example>"
    assert msg["References"].split() == ["<earlier@customer.example>", "<cust-1@customer.example>"]
    assert msg["Subject"] == f"Re: API returns 503 [#{row.ticket_id}]"
    assert msg["Auto-Submitted"] == "no"
    assert msg["From"] == "Example Support <support@example.com>"
    assert msg["To"] == "ada@customer.example"
    assert handler.messages[0][1] == ["ada@customer.example"]
    text = msg.get_content()
    assert BODY in text.replace("\r\n", "\n")
    assert "Rita Rep" in text  # the rep's name in the signature
    # Every line on the wire stays within the SMTP limit.
    assert max(len(line) for line in handler.messages[0][2].splitlines()) <= 998

    with Session(engine) as session:
        draft = session.get(Draft, row.draft_id)
        assert draft is not None and draft.state == DraftState.SENT
        stored = session.exec(select(Message).where(Message.direction == "outbound")).one()
        assert stored.message_id == row.message_id.strip("<>")
        assert stored.ticket_id == row.ticket_id
        assert stored.state == MessageState.SENT
        inbound = session.get(Message, draft.message_pk)
        assert inbound is not None and inbound.state == MessageState.SENT


def test_consecutive_releases_share_one_relay_session(
    engine: Engine, make_config: Callable[..., Config], sink: tuple[SinkHandler, int]
) -> None:
    handler, port = sink
    ids = [released(engine, customer_mid=f"c{i}@customer.example") for i in range(5)]
    assert SenderRunner(sender_config(make_config, port), engine).run_once() == 5
    assert {outbox(engine, i).state for i in ids} == {OutboxState.SENT}
    assert len(handler.messages) == 5 and len(set(handler.peers)) == 1


def test_a_reused_session_hung_up_mid_run_is_reopened(
    engine: Engine, make_config: Callable[..., Config], sink: tuple[SinkHandler, int]
) -> None:
    handler, port = sink
    handler.hang_up_after_data = True
    ids = [released(engine, customer_mid=f"m{i}@customer.example") for i in range(3)]
    real_mail = smtplib.SMTP.mail
    awaited = [0]  # messages whose hang-up has been waited for

    def late_mail(self: smtplib.SMTP, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        if len(handler.peers) > awaited[0]:  # a message went out: let its hang-up land
            assert handler.hung_up.wait(10)
            handler.hung_up.clear()
            awaited[0] = len(handler.peers)
            time.sleep(0.05)  # and the FIN reach this side
        return real_mail(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(smtplib.SMTP, "mail", late_mail)
        assert SenderRunner(sender_config(make_config, port), engine).run_once() == 3
    rows = [outbox(engine, i) for i in ids]
    assert {r.state for r in rows} == {OutboxState.SENT} and all(r.attempts == 1 for r in rows)
    assert len(handler.messages) == 3 and len(set(handler.peers)) == 3


def test_451_is_retried_with_backoff_and_sent_once(
    engine: Engine, make_config: Callable[..., Config], sink: tuple[SinkHandler, int]
) -> None:
    handler, port = sink
    config = sender_config(make_config, port)
    runner = SenderRunner(config, engine)
    outbox_id = released(engine)
    handler.replies.append("451 4.3.0 try again later")
    start = utcnow()
    assert runner.run_once(start) == 1
    row = outbox(engine, outbox_id)
    assert row.state == OutboxState.PENDING
    assert row.attempts == 1
    assert row.last_error is not None and "451" in row.last_error
    assert row.next_attempt_at is not None
    assert row.next_attempt_at - start >= timedelta(seconds=30)
    assert runner.run_once(start + timedelta(seconds=5)) == 0  # not due yet
    assert runner.run_once(start + timedelta(seconds=31)) == 1
    assert outbox(engine, outbox_id).state == OutboxState.SENT
    assert len(handler.messages) == 1


def test_relay_down_retries_then_gives_up(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    config = sender_config(make_config, free_port(), max_attempts=2)
    runner = SenderRunner(config, engine)
    outbox_id = released(engine)
    now = utcnow()
    assert runner.run_once(now) == 1
    row = outbox(engine, outbox_id)
    assert row.state == OutboxState.PENDING
    assert row.last_error is not None and "cannot reach relay" in row.last_error
    assert runner.run_once(now + timedelta(hours=2)) == 1
    row = outbox(engine, outbox_id)
    assert row.state == OutboxState.FAILED
    assert row.last_error is not None and row.last_error.startswith("gave up after 2 attempts")


def test_backoff_doubles_and_is_capped(make_config: Callable[..., Config]) -> None:
    cfg = sender_config(make_config, 25, backoff_base_seconds=10.0, backoff_max_seconds=35.0)
    assert [backoff(n, cfg.sender).total_seconds() for n in (1, 2, 3, 4)] == [10, 20, 35, 35]


def test_550_marks_failed_with_server_reply(
    engine: Engine, make_config: Callable[..., Config], sink: tuple[SinkHandler, int]
) -> None:
    handler, port = sink
    config = sender_config(make_config, port)
    outbox_id = released(engine)
    handler.replies.append("550 5.1.1 mailbox unavailable")
    assert SenderRunner(config, engine).run_once() == 1
    row = outbox(engine, outbox_id)
    assert row.state == OutboxState.FAILED
    assert row.last_error == "550 5.1.1 mailbox unavailable"
    assert handler.messages == []
    with Session(engine) as session:
        draft = session.get(Draft, row.draft_id)
        assert draft is not None and draft.state == DraftState.FAILED
    # A failed row is never picked up again.
    assert SenderRunner(config, engine).run_once(utcnow() + timedelta(days=1)) == 0


def test_max_per_minute_caps_sending(
    engine: Engine, make_config: Callable[..., Config], sink: tuple[SinkHandler, int]
) -> None:
    handler, port = sink
    config = sender_config(make_config, port, max_per_minute=2)
    ids = [released(engine, customer_mid=f"c{i}@customer.example") for i in range(3)]
    runner = SenderRunner(config, engine)
    now = utcnow()
    assert runner.run_once(now) == 2
    assert runner.run_once(now + timedelta(seconds=1)) == 0
    assert runner.run_once(now + timedelta(seconds=61)) == 1
    assert {outbox(engine, i).state for i in ids} == {OutboxState.SENT}
    assert len(handler.messages) == 3


KILL_SCRIPT = """
import os, signal, smtplib, sys
from pathlib import Path
from gateway.config import load_config
from gateway.outbound.sender import SenderRunner
from storage.db import make_engine

original = smtplib.SMTP.data

def data_then_die(self, msg):
    reply = original(self, msg)  # the relay has answered 250: the message is out
    os.kill(os.getpid(), signal.SIGKILL)  # die before the database hears of it
    return reply

smtplib.SMTP.data = data_then_die
config = load_config(Path(sys.argv[1]))
SenderRunner(config, make_engine(config.database_url)).run_once()
"""


def test_sigkill_between_send_and_commit_never_duplicates(
    engine: Engine,
    make_config: Callable[..., Config],
    sink: tuple[SinkHandler, int],
    tmp_path: Path,
    db_path: Path,
) -> None:
    handler, port = sink
    config_file = tmp_path / "config.toml"
    config_file.write_text(
        textwrap.dedent(
            f"""
            [storage]
            url = "sqlite:///{db_path}"
            [sender]
            enabled = true
            host = "127.0.0.1"
            port = {port}
            timeout_seconds = 5.0
            """
        ),
        encoding="utf-8",
    )
    outbox_id = released(engine)
    proc = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(config_file)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert len(handler.messages) == 1
    assert outbox(engine, outbox_id).state == OutboxState.SENDING

    config = sender_config(make_config, port)
    runner = SenderRunner(config, engine)
    # Before the claim goes stale nothing happens; after, the row is uncertain, not resent.
    assert runner.run_once() == 0
    later = utcnow() + timedelta(seconds=config.runner.stale_after_seconds + 1)
    assert runner.run_once(later) == 0
    assert runner.run_once(later + timedelta(hours=1)) == 0
    row = outbox(engine, outbox_id)
    assert row.state == OutboxState.UNCERTAIN
    assert row.last_error is not None and "not resent" in row.last_error
    assert len(handler.messages) == 1


def test_sent_reply_is_copied_to_the_imap_sent_folder(
    engine: Engine,
    make_config: Callable[..., Config],
    sink: tuple[SinkHandler, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.support.dovecot import mailbox_section, password_env, start_dovecot

    handler, port = sink
    server = start_dovecot({"alice": "secret-a"})
    try:
        for var, value in password_env(server).items():
            monkeypatch.setenv(var, value)
        config = sender_config(
            make_config, port, imap=[mailbox_section(server, sent_folder="Sent Items")]
        )
        outbox_id = released(engine)
        assert SenderRunner(config, engine).run_once() == 1
        client = server.client("alice")
        client.select_folder("Sent Items", readonly=True)
        uids = client.search("ALL")
        assert len(uids) == 1
        fetched = client.fetch(uids, ["BODY.PEEK[]", "FLAGS"])[uids[0]]
        client.logout()
    finally:
        server.stop()
    # The copy is byte for byte what the relay received (line endings aside).
    assert fetched[b"BODY[]"].replace(b"\r\n", b"\n") == handler.messages[0][2].replace(
        b"\r\n", b"\n"
    )
    assert b"\\Seen" in fetched[b"FLAGS"]
    assert outbox(engine, outbox_id).state == OutboxState.SENT


def test_failed_sent_copy_is_recorded_and_the_reply_stays_sent(
    engine: Engine,
    make_config: Callable[..., Config],
    sink: tuple[SinkHandler, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handler, port = sink
    monkeypatch.setenv("SG_TEST_SENT_PW", "pw")
    mailbox = {
        "name": "support",
        "host": "127.0.0.1",
        "port": free_port(),  # nothing listens here
        "tls": "none",
        "username": "alice",
        "password_env": "SG_TEST_SENT_PW",
        "sent_folder": "Sent",
    }
    config = sender_config(make_config, port, imap=[mailbox])
    outbox_id = released(engine)
    assert SenderRunner(config, engine).run_once() == 1
    assert len(handler.messages) == 1
    assert outbox(engine, outbox_id).state == OutboxState.SENT
    with Session(engine) as session:
        failed = session.exec(
            select(AuditLog).where(AuditLog.action == "outbox.sent_copy_failed")
        ).one()
    assert failed.entity_id == outbox_id and "cannot connect" in failed.details["error"]


class HangUpAfterData(threading.Thread):
    """Speaks just enough SMTP to take a message body, then hangs up without a reply."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(10)
        self.port = int(self.sock.getsockname()[1])
        self.bodies: list[bytes] = []

    def run(self) -> None:
        conn, _ = self.sock.accept()
        conn.settimeout(10)
        with conn, conn.makefile("rb") as lines:
            conn.sendall(b"220 hangup ESMTP\r\n")
            for line in lines:
                verb = line[:4].upper()
                if verb == b"DATA":
                    conn.sendall(b"354 go ahead\r\n")
                    body = b"".join(iter(lines.readline, b".\r\n"))
                    self.bodies.append(body)
                    return  # the message is here; the client never hears back
                conn.sendall(b"250 ok\r\n")
        self.sock.close()


def test_connection_lost_after_the_body_is_uncertain_not_retried(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    relay = HangUpAfterData()
    relay.start()
    config = sender_config(make_config, relay.port)
    outbox_id = released(engine)
    runner = SenderRunner(config, engine)
    assert runner.run_once() == 1
    relay.join(timeout=10)
    relay.sock.close()
    row = outbox(engine, outbox_id)
    assert len(relay.bodies) == 1
    assert row.state == OutboxState.UNCERTAIN
    assert row.last_error is not None and "outcome unknown" in row.last_error
    assert runner.run_once(utcnow() + timedelta(days=1)) == 0


def test_row_without_recipients_fails_clearly(
    engine: Engine, make_config: Callable[..., Config], sink: tuple[SinkHandler, int]
) -> None:
    handler, port = sink
    with session_scope(engine) as session:
        row = Outbox(message_id="<sg-none@example.com>", to_addrs=[], released_by="Rita Rep")
        session.add(row)
        session.flush()
        row_id = int(row.id or 0)
    assert SenderRunner(sender_config(make_config, port), engine).run_once() == 1
    stored = outbox(engine, row_id)
    assert stored.state == OutboxState.FAILED
    assert stored.last_error == "no recipients; not sent"
    assert handler.messages == []


@pytest.fixture
def relay_cert(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ssl.SSLContext]:
    """A self-signed cert for 127.0.0.1 that the sender trusts via SSL_CERT_FILE."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "relay.pem", tmp_path / "relay.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    _tls_context.cache_clear()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(str(cert), str(key))
    yield server_ctx
    _tls_context.cache_clear()


def relay_auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"relay", b"pw-ok")
    return AuthResult(success=ok, handled=False)


@pytest.mark.parametrize("password", ["pw-ok", "wrong"])
def test_starttls_and_auth_from_env(
    engine: Engine,
    make_config: Callable[..., Config],
    relay_cert: ssl.SSLContext,
    monkeypatch: pytest.MonkeyPatch,
    password: str,
) -> None:
    handler = SinkHandler()
    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        tls_context=relay_cert,
        require_starttls=True,
        auth_required=True,
        authenticator=relay_auth,
    )
    controller.start()
    try:
        monkeypatch.setenv("SG_TEST_RELAY_PW", password)
        config = sender_config(
            make_config, port, tls="starttls", username="relay", password_env="SG_TEST_RELAY_PW"
        )
        outbox_id = released(engine)
        assert SenderRunner(config, engine).run_once() == 1
    finally:
        controller.stop()
    row = outbox(engine, outbox_id)
    if password == "pw-ok":
        assert row.state == OutboxState.SENT and len(handler.messages) == 1
    else:
        # A rejected login is the relay's configuration, not the message: retried later.
        assert row.state == OutboxState.PENDING and handler.messages == []
        assert row.last_error is not None and "535" in row.last_error


def test_implicit_tls(
    engine: Engine, make_config: Callable[..., Config], relay_cert: ssl.SSLContext
) -> None:
    handler = SinkHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ssl_context=relay_cert)
    controller.start()
    try:
        config = sender_config(make_config, port, tls="implicit")
        outbox_id = released(engine)
        assert SenderRunner(config, engine).run_once() == 1
    finally:
        controller.stop()
    assert outbox(engine, outbox_id).state == OutboxState.SENT
    assert len(handler.messages) == 1


def test_missing_password_variable_is_a_clear_temporary_error(
    engine: Engine, make_config: Callable[..., Config], sink: tuple[SinkHandler, int]
) -> None:
    _, port = sink
    config = sender_config(make_config, port, username="relay", password_env="SG_TEST_UNSET_PW")
    outbox_id = released(engine)
    assert SenderRunner(config, engine).run_once() == 1
    row = outbox(engine, outbox_id)
    assert row.state == OutboxState.PENDING
    assert row.last_error is not None
    assert "SG_TEST_UNSET_PW is not set" in row.last_error


def test_unbuildable_row_fails_clearly_instead_of_hanging_in_sending(
    engine: Engine,
    make_config: Callable[..., Config],
    sink: tuple[SinkHandler, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handler, port = sink
    outbox_id = released(engine)

    def broken(*args: Any, **kwargs: Any) -> EmailMessage:
        raise ValueError("header cannot be encoded")

    # Fault injection: no real row has been found that the builder rejects.
    monkeypatch.setattr("gateway.outbound.sender.build_message", broken)
    assert SenderRunner(sender_config(make_config, port), engine).run_once() == 1
    stored = outbox(engine, outbox_id)
    assert stored.state == OutboxState.FAILED
    assert stored.last_error == "cannot build the message: ValueError: header cannot be encoded"
    assert handler.messages == []


# An Exchange Online Message-ID: longer than a 78-character header line on its own.
EXCHANGE_MID = (
    "DB9PR08MB6634A1B2C3D4E5F6A7B8C9D0E1F2A3B4C5D6E7F8A9B0C1D2E3F4A5B6C7D8E9"
    "@DB9PR08MB6634.eurprd08.prod.outlook.com"
)


def header_lines(raw: bytes, name: str) -> list[str]:
    """One header's physical lines as they crossed the wire, the first with its name."""
    head = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode("utf-8")
    lines = head.split("\n")
    start = next(i for i, line in enumerate(lines) if line.lower().startswith(f"{name.lower()}:"))
    end = start + 1
    while end < len(lines) and lines[end][:1] in (" ", "\t"):
        end += 1
    return lines[start:end]


def test_long_exchange_message_id_is_sent_verbatim_so_the_reply_threads(
    engine: Engine, make_config: Callable[..., Config], sink: tuple[SinkHandler, int]
) -> None:
    handler, port = sink
    outbox_id = released(engine, customer_mid=EXCHANGE_MID)
    assert SenderRunner(sender_config(make_config, port), engine).run_once() == 1
    assert outbox(engine, outbox_id).state == OutboxState.SENT

    raw = handler.messages[0][2]
    assert header_lines(raw, "In-Reply-To") == [f"In-Reply-To: <{EXCHANGE_MID}>"]
    references = header_lines(raw, "References")
    assert not any("=?" in line for line in references)
    # Folded, if at all, only between ids: each line holds whole ids and nothing else.
    ids = [piece for line in references for piece in line.removeprefix("References:").split()]
    assert ids == ["<earlier@customer.example>", f"<{EXCHANGE_MID}>"]
    assert max(len(line) for line in raw.splitlines()) <= 998
    (msg,) = handler.parsed()
    assert msg["In-Reply-To"] == f"<{EXCHANGE_MID}>"
    assert msg["Message-ID"] == outbox(engine, outbox_id).message_id


@pytest.fixture
def ascii_sink() -> Iterator[tuple[SinkHandler, int]]:
    """A relay without SMTPUTF8 (aiosmtpd's Controller offers it unless told not to)."""
    with running_sink(enable_SMTPUTF8=False) as started:
        yield started


def test_idn_domain_is_sent_as_punycode(
    engine: Engine, make_config: Callable[..., Config], ascii_sink: tuple[SinkHandler, int]
) -> None:
    handler, port = ascii_sink
    outbox_id = released(engine, to="ada@exämple.de")
    assert SenderRunner(sender_config(make_config, port), engine).run_once() == 1
    assert outbox(engine, outbox_id).state == OutboxState.SENT
    _, rcpts, raw = handler.messages[0]
    assert rcpts == ["ada@xn--exmple-cua.de"]
    assert handler.mail_options == [[]]  # plain ASCII SMTP: no extension needed
    # The header names the same address; an encoded word would not be an address.
    assert header_lines(raw, "To") == ["To: ada@xn--exmple-cua.de"]


def test_non_ascii_local_part_is_sent_over_smtputf8_when_the_relay_offers_it(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    with running_sink(enable_SMTPUTF8=True) as (handler, port):
        outbox_id = released(engine, to="jörg@exämple.de")
        assert SenderRunner(sender_config(make_config, port), engine).run_once() == 1
    assert outbox(engine, outbox_id).state == OutboxState.SENT
    _, rcpts, raw = handler.messages[0]
    assert rcpts == ["jörg@xn--exmple-cua.de"]
    assert "SMTPUTF8" in handler.mail_options[0]
    assert header_lines(raw, "To") == ["To: jörg@exämple.de"]
    (msg,) = handler.parsed()
    assert msg["Subject"] == f"Re: API returns 503 [#{outbox(engine, outbox_id).ticket_id}]"
    assert BODY in msg.get_content().replace("\r\n", "\n")


@pytest.mark.parametrize(
    ("to", "from_address", "reason"),
    [
        ("jörg@exämple.de", "support@example.com", "recipient"),
        ("ada@customer.example", "sörvice@example.com", "sender address"),
    ],
)
def test_non_ascii_local_part_fails_clearly_when_the_relay_lacks_smtputf8(
    engine: Engine,
    make_config: Callable[..., Config],
    ascii_sink: tuple[SinkHandler, int],
    to: str,
    from_address: str,
    reason: str,
) -> None:
    handler, port = ascii_sink
    config = sender_config(make_config, port, from_address=from_address)
    outbox_id = released(engine, to=to)
    runner = SenderRunner(config, engine)
    assert runner.run_once() == 1
    row = outbox(engine, outbox_id)
    assert row.state == OutboxState.FAILED
    assert row.last_error == f"{reason} needs SMTPUTF8, which the relay does not offer"
    assert handler.messages == []
    with Session(engine) as session:
        draft = session.get(Draft, row.draft_id)
        assert draft is not None and draft.state == DraftState.FAILED
    assert runner.run_once(utcnow() + timedelta(days=1)) == 0


def test_unexpected_error_before_data_is_retried_with_backoff(
    engine: Engine,
    make_config: Callable[..., Config],
    sink: tuple[SinkHandler, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handler, port = sink
    outbox_id = released(engine)

    def broken_rcpt(self: smtplib.SMTP, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        raise RuntimeError("client fault at RCPT")

    # Fault injection: the address cases that used to raise here are handled above.
    monkeypatch.setattr(smtplib.SMTP, "rcpt", broken_rcpt)
    runner = SenderRunner(sender_config(make_config, port), engine)
    start = utcnow()
    assert runner.run_once(start) == 1
    row = outbox(engine, outbox_id)
    assert row.state == OutboxState.PENDING and row.attempts == 1
    assert row.last_error is not None and "RuntimeError: client fault at RCPT" in row.last_error
    assert row.next_attempt_at is not None
    assert row.next_attempt_at - start >= timedelta(seconds=30)
    assert handler.messages == []

    monkeypatch.undo()
    assert runner.run_once(start + timedelta(seconds=31)) == 1
    assert outbox(engine, outbox_id).state == OutboxState.SENT
    assert len(handler.messages) == 1


def test_unexpected_error_during_data_is_uncertain_not_retried(
    engine: Engine,
    make_config: Callable[..., Config],
    sink: tuple[SinkHandler, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handler, port = sink
    outbox_id = released(engine)
    original = smtplib.SMTP.data

    def data_then_fault(self: smtplib.SMTP, msg: bytes) -> tuple[int, bytes]:
        original(self, msg)  # the relay has the message
        raise RuntimeError("client fault after the body")

    monkeypatch.setattr(smtplib.SMTP, "data", data_then_fault)
    runner = SenderRunner(sender_config(make_config, port), engine)
    assert runner.run_once() == 1
    row = outbox(engine, outbox_id)
    assert row.state == OutboxState.UNCERTAIN
    assert row.last_error is not None and "outcome unknown" in row.last_error
    assert runner.run_once(utcnow() + timedelta(days=1)) == 0
    assert len(handler.messages) == 1
