"""The front door under abuse: password guessing, connection floods, huge DATA, RCPT floods.

Real aiosmtpd on 127.0.0.1 and real smtplib clients; the timing assertions measure the
server's own pacing (one AUTH guess a second per address once throttled).
"""

from __future__ import annotations

import logging
import os
import smtplib
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from gateway.config import ConfigError
from gateway.inbound.session import BUDGET_CHUNK
from gateway.inbound.smtp import make_controller
from storage.models import Message
from tests.gateway.inbound.test_smtp import count, make_mail
from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[3]
PW_ENV = "SG_TEST_LIMITS_PASS"
AUTH = {"auth_required": True, "auth_username": "mta", "auth_password_env": PW_ENV}


def _guess(client: smtplib.SMTP, login: str, password: str) -> int:
    client.user, client.password = login, password
    code, _ = client.docmd("AUTH", "PLAIN " + _plain(login, password))
    return code


def _plain(login: str, password: str) -> str:
    import base64

    return base64.b64encode(f"\0{login}\0{password}".encode()).decode()


def test_auth_guesses_slow_to_one_a_second_after_five_failures(
    smtp_server, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(PW_ENV, "s3cret")
    caplog.set_level(logging.WARNING, logger="gateway.inbound.session")
    _, port = smtp_server(**AUTH)
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo()
        start = time.monotonic()
        assert [_guess(client, "dana@example.com", f"guess{i}") for i in range(5)] == [535] * 5
        assert time.monotonic() - start < 1.0  # the first few are not slowed
        times = [time.monotonic()]  # the fifth failure: the next guess waits a second
        for i in range(3):
            assert _guess(client, "dana@example.com", f"slow{i}") == 535
            times.append(time.monotonic())
        # Three guesses after the fifth failure: at most one a second, the first too.
        assert (len(times) - 1) / (times[-1] - times[0]) <= 1.05
        # ... and after a few more the connection is dropped.
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.docmd("NOOP")
            client.docmd("NOOP")
    # New connections from the same address share the pace.
    replies: list[float] = []

    def one_guess() -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
            c.ehlo()
            _guess(c, "dana@example.com", "parallel")
            replies.append(time.monotonic())

    start = time.monotonic()
    threads = [threading.Thread(target=one_guess) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=15)
    assert len(replies) == 3
    assert max(replies) - start >= 2.0  # three guesses need at least two seconds
    # The right password still works (slowly), and resets the address's count.
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo()
        assert _guess(client, "mta", "s3cret") == 235
    text = caplog.text
    assert "d***@example.com" in text and "127.0.0.1" in text
    assert "dana@" not in text and "guess" not in text and "s3cret" not in text


def test_auth_without_tls_warns_once_per_process_not_per_connection(
    smtp_server, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(PW_ENV, "s3cret")
    caplog.set_level(logging.INFO)
    _, port = smtp_server(**AUTH)
    for _ in range(3):
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.ehlo()
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "auth_require_tls == False" in m]
    assert len([m for m in messages if "AUTH is required without TLS" in m]) <= 1


def test_missing_auth_secret_refuses_to_start(make_config, engine: Engine, tmp_path: Path) -> None:
    os.environ.pop(PW_ENV, None)
    config = make_config(smtp={"port": free_port(), **AUTH})
    with pytest.raises(ConfigError, match=PW_ENV):
        make_controller(config, engine)
    conf = tmp_path / "config.toml"
    conf.write_text(
        f'[storage]\nurl = "sqlite:///{tmp_path}/serve.sqlite3"\n'
        f'[smtp]\nport = {free_port()}\nauth_required = true\nauth_username = "mta"\n'
        f'auth_password_env = "{PW_ENV}"\n'
    )
    env = {k: v for k, v in os.environ.items() if k != PW_ENV}
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--config", str(conf), "serve", "--no-runners"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert PW_ENV in proc.stderr and "not set" in proc.stderr
    assert "SMTP listening" not in proc.stdout


def test_connections_over_the_caps_get_421(smtp_server) -> None:
    _, port = smtp_server(max_connections_per_ip=3)
    held = [smtplib.SMTP("127.0.0.1", port, timeout=10) for _ in range(3)]
    try:
        with pytest.raises(smtplib.SMTPConnectError) as refused:
            smtplib.SMTP("127.0.0.1", port, timeout=10)
        assert refused.value.smtp_code == 421
        # Another address still gets in (Linux routes all of 127/8 to loopback).
        with smtplib.SMTP("127.0.0.1", port, timeout=10, source_address=("127.0.0.2", 0)) as c:
            assert c.noop()[0] == 250
    finally:
        for client in held:
            client.quit()
    _wait_until_connects(port)

    _, port = smtp_server(max_connections=2)
    held = [
        smtplib.SMTP("127.0.0.1", port, timeout=10, source_address=(f"127.0.0.{i}", 0))
        for i in (3, 4)
    ]
    try:
        with pytest.raises(smtplib.SMTPConnectError) as refused:
            smtplib.SMTP("127.0.0.1", port, timeout=10, source_address=("127.0.0.5", 0))
        assert refused.value.smtp_code == 421
    finally:
        for client in held:
            client.quit()


def _wait_until_connects(port: int) -> None:
    deadline = time.monotonic() + 5
    while True:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                client.noop()
                return
        except smtplib.SMTPConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_more_than_100_recipients_get_452(smtp_server, engine: Engine) -> None:
    _, port = smtp_server()
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo()
        client.mail("dana@acme.example")
        codes = [client.rcpt(f"r{i}@help.example.org")[0] for i in range(101)]
        assert codes[:100] == [250] * 100
        assert codes[100] == 452
        assert client.data(make_mail(1))[0] == 250
    with Session(engine) as session:
        assert len(session.exec(select(Message)).one().envelope_to) == 100


def test_postmaster_is_accepted(smtp_server, engine: Engine) -> None:
    _, port = smtp_server()
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo()
        client.mail("dana@acme.example")
        assert client.rcpt("<postmaster>")[0] == 250
        assert client.rcpt("PostMaster@example.com")[0] == 250
        assert client.rcpt("postmaster@elsewhere.example")[0] == 550
        assert client.data(make_mail(2))[0] == 250
    assert count(engine) == 1


def test_data_in_memory_is_capped_across_connections(smtp_server, engine: Engine) -> None:
    controller, port = smtp_server(max_message_size=20_000, max_bytes_in_flight=30_000)
    slow = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        reader = slow.makefile("rb")
        reader.readline()
        for cmd in (b"EHLO slow\r\n", b"MAIL FROM:<a@b.example>\r\n"):
            slow.sendall(cmd)
        slow.sendall(b"RCPT TO:<support@example.com>\r\nDATA\r\n")
        while not reader.readline().startswith(b"354"):
            pass
        # 19,000 bytes held open, without the final dot.
        slow.sendall(b"Subject: big\r\n\r\n" + b"x" * 98 + b"\r\n" + (b"y" * 98 + b"\r\n") * 190)
        deadline = time.monotonic() + 5
        while controller.guard.data.used < BUDGET_CHUNK:  # booked a chunk at a time
            assert time.monotonic() < deadline
            time.sleep(0.01)
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            big = make_mail(3, body="z" * 70 + ("\n" + "z" * 70) * 250)
            with pytest.raises(smtplib.SMTPDataError) as full:
                client.sendmail("dana@acme.example", ["support@example.com"], big)
            assert full.value.smtp_code == 452
            slow.sendall(b".\r\n")
            line = reader.readline()
            while line.startswith(b"250-"):
                line = reader.readline()
            assert line.startswith(b"250 ")
            deadline = time.monotonic() + 5
            while controller.guard.data.used:  # given back right after the reply
                assert time.monotonic() < deadline
                time.sleep(0.01)
            assert client.sendmail("dana@acme.example", ["support@example.com"], big) == {}
    finally:
        slow.close()
    assert count(engine) == 2
