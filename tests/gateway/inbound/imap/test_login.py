"""Logging in: passwords from the environment, OAuth2 tokens (XOAUTH2), clear failures."""

from __future__ import annotations

import json
import shlex
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

import gateway.inbound.imap.auth as imap_auth
from gateway.config import Config, ImapConfig
from gateway.inbound.imap.auth import ImapConnectError, access_token, connect, redact
from gateway.inbound.imap.poller import ImapError, poll_once
from storage.models import ImapCheckpoint, Message
from tests.support.dovecot import Dovecot, mailbox_section, make_message
from tests.support.net import free_port

GOOD_TOKEN = "ya29.good-token-for-alice"


class Introspection(BaseHTTPRequestHandler):
    """RFC 7662 token introspection: only GOOD_TOKEN is active, and it belongs to alice."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        token = parse_qs(self.rfile.read(length).decode()).get("token", [""])[0]
        answer = {"active": True, "username": "alice"} if token == GOOD_TOKEN else {"active": False}
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def oauth_dovecot(dovecot_factory: Callable[..., Dovecot]) -> Iterator[Dovecot]:
    http = HTTPServer(("127.0.0.1", 0), Introspection)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{http.server_port}/introspect"
    yield dovecot_factory({"alice": "secret-a"}, oauth2_url=url)
    http.shutdown()
    thread.join(timeout=5)


def token_command(output: str, *, exit_code: int = 0, stderr: str = "") -> str:
    code = (
        f"import sys; print({output!r}); print({stderr!r}, file=sys.stderr); sys.exit({exit_code})"
    )
    return shlex.join([sys.executable, "-c", code])


def messages(engine: Engine) -> list[Message]:
    with Session(engine) as session:
        return list(session.exec(select(Message)).all())


def test_xoauth2_token_from_a_command_logs_in_and_ingests(
    oauth_dovecot: Dovecot, make_config: Callable[..., Config], engine: Engine
) -> None:
    oauth_dovecot.append([make_message(1)])
    section = mailbox_section(
        oauth_dovecot, password_env="", oauth2_token_command=token_command(GOOD_TOKEN)
    )
    cfg = make_config(imap=[section]).imap[0]

    assert poll_once(cfg, engine) == 1
    assert "method=XOAUTH2" in oauth_dovecot.log_text()


def test_xoauth2_token_from_env(
    oauth_dovecot: Dovecot,
    make_config: Callable[..., Config],
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SG_TEST_TOKEN", GOOD_TOKEN)
    oauth_dovecot.append([make_message(2)])
    section = mailbox_section(oauth_dovecot, password_env="", oauth2_token_env="SG_TEST_TOKEN")

    assert poll_once(make_config(imap=[section]).imap[0], engine) == 1


def test_rejected_token_is_a_clear_error_without_the_token(
    oauth_dovecot: Dovecot,
    make_config: Callable[..., Config],
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SG_TEST_TOKEN", "expired-token-123")
    section = mailbox_section(oauth_dovecot, password_env="", oauth2_token_env="SG_TEST_TOKEN")

    with pytest.raises(
        ImapError, match=r"authentication failed for a\*\*\*.*XOAUTH2 token"
    ) as info:
        poll_once(make_config(imap=[section]).imap[0], engine)
    assert "expired-token-123" not in str(info.value)
    with Session(engine) as session:
        row = session.exec(select(ImapCheckpoint)).one()
    assert row.last_error == str(info.value) and messages(engine) == []


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (token_command("", exit_code=3, stderr="refresh token revoked"), "exited with 3: refresh"),
        (token_command(""), "printed no token"),
        (shlex.join(["/nonexistent/get-token", "--user", "x"]), "'/nonexistent/get-token' failed"),
        ("", "oauth2_token_command is empty"),
    ],
)
def test_token_command_failures_are_named(command: str, expected: str) -> None:
    cfg = ImapConfig(name="m", username="a@example.com", oauth2_token_command=command)

    with pytest.raises((ImapConnectError, ValueError), match=expected):
        access_token(cfg)


def test_token_command_that_hangs_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imap_auth, "TOKEN_COMMAND_TIMEOUT", 0.2)
    hang = shlex.join([sys.executable, "-c", "import time; time.sleep(30)"])
    cfg = ImapConfig(name="m", username="a@example.com", oauth2_token_command=hang)

    with pytest.raises(ImapConnectError, match="timed out"):
        access_token(cfg)


def test_token_output_is_stripped() -> None:
    cfg = ImapConfig(
        name="m", username="a", oauth2_token_command=token_command(f"  {GOOD_TOKEN}  ")
    )
    assert access_token(cfg) == GOOD_TOKEN


def test_unreachable_server_is_a_clear_error() -> None:
    port = free_port()  # nothing listens here
    cfg = ImapConfig(name="m", port=port, tls="none", username="a", password_env="X")

    with pytest.raises(ImapConnectError, match=rf"cannot connect to 127.0.0.1:{port} \(tls=none\)"):
        connect(cfg)


def test_missing_password_variable_is_named(
    dovecot: Dovecot, make_config: Callable[..., Config], engine: Engine
) -> None:
    section = mailbox_section(dovecot, password_env="SG_TEST_NOT_SET_ANYWHERE")

    with pytest.raises(ImapError, match="environment variable SG_TEST_NOT_SET_ANYWHERE is not set"):
        poll_once(make_config(imap=[section]).imap[0], engine)


@pytest.mark.parametrize(
    ("address", "shown"),
    [("alice@example.com", "a***@example.com"), ("bob", "b***"), ("", "***")],
)
def test_redact(address: str, shown: str) -> None:
    assert redact(address) == shown


@pytest.fixture
def tls_dovecot(dovecot_factory: Callable[..., Dovecot]) -> Dovecot:
    return dovecot_factory({"alice": "secret-a"}, tls=True)


@pytest.mark.parametrize("mode", ["implicit", "starttls"])
def test_tls_modes_with_a_private_ca(
    mode: str,
    tls_dovecot: Dovecot,
    make_config: Callable[..., Config],
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SG_TEST_IMAP_PW_ALICE", "secret-a")
    tls_dovecot.append([make_message(1, prefix=mode)])
    port = tls_dovecot.tls_port if mode == "implicit" else tls_dovecot.port
    section = mailbox_section(
        tls_dovecot, tls=mode, port=port, tls_ca_file=str(tls_dovecot.ca_file)
    )

    assert poll_once(make_config(imap=[section]).imap[0], engine) == 1
    log = tls_dovecot.log_text()
    assert "method=PLAIN" in log and "TLS" in log


def test_untrusted_certificate_is_refused(
    tls_dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SG_TEST_IMAP_PW_ALICE", "secret-a")
    section = mailbox_section(tls_dovecot, tls="implicit", port=tls_dovecot.tls_port)
    cfg = ImapConfig(**section)

    with pytest.raises(ImapConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        connect(cfg)


def test_missing_ca_file_is_named(tmp_path: Any) -> None:
    missing = tmp_path / "nope.pem"
    cfg = ImapConfig(name="m", tls="implicit", tls_ca_file=str(missing), username="a")

    with pytest.raises(ImapConnectError, match=rf"tls_ca_file {missing}"):
        connect(cfg)


def test_connections_ask_the_kernel_to_detect_dead_peers(
    dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SG_TEST_IMAP_PW_ALICE", "secret-a")
    client = connect(ImapConfig(**mailbox_section(dovecot)))
    try:
        sock = client.socket()
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        if hasattr(socket, "TCP_KEEPIDLE"):
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 60
    finally:
        client.logout()
