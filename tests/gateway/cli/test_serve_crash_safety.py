"""SIGKILL the real server mid-stream: every 250 is durable, nothing is stored twice.

Clients behave like MTAs: a message counts as delivered only when it got a 250, and
anything that did not is retried until it does. The server is killed while several
clients are sending, restarted, and the database must then hold every message once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path

import pytest
from sqlmodel import Session, select

from storage.db import make_engine
from storage.models import Message
from tests.support.net import free_port

CLIENTS = 4
PER_CLIENT = 75


def _mail(client: int, n: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"client{client}@customers.example"
    msg["To"] = "support@example.com"
    msg["Subject"] = f"crash test {client}/{n}"
    if n % 10:  # every tenth message has no Message-ID: deduped by content hash
        msg["Message-ID"] = f"<crash-{client}-{n}@customers.example>"
    msg.set_content(f"client {client} message {n}\n" + "log line\n" * 200)
    return msg.as_bytes(policy=SMTP_POLICY)


def _start(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "--config",
            str(config),
            "serve",
            "--no-runners",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parents[3],
    )


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "server exited early"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(100).startswith(b"220"):
                    return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("server did not start listening")


@pytest.mark.slow
def test_sigkill_mid_stream_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    port = free_port()
    db = tmp_path / "crash.sqlite3"
    config = tmp_path / "config.toml"
    config.write_text(
        f'[storage]\nurl = "sqlite:///{db}"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nrecipients = ["support@example.com"]\n'
        '[logging]\nlevel = "WARNING"\n'
    )
    proc = _start(config)
    _wait_listening(port, proc)

    acked: set[tuple[int, int]] = set()
    lock = threading.Lock()
    deadline = time.monotonic() + 180

    def client(cid: int) -> None:
        pending = list(range(PER_CLIENT))
        conn: smtplib.SMTP | None = None
        while pending and time.monotonic() < deadline:
            n = pending[0]
            try:
                if conn is None:
                    conn = smtplib.SMTP("127.0.0.1", port, timeout=10)
                conn.sendmail(
                    f"client{cid}@customers.example", ["support@example.com"], _mail(cid, n)
                )
            except (OSError, smtplib.SMTPException):
                # No 250: the MTA keeps the message and retries later.
                conn = None
                time.sleep(0.05)
                continue
            with lock:
                acked.add((cid, n))
            pending.pop(0)
        if conn is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                conn.quit()

    threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
    for t in threads:
        t.start()
    while len(acked) < CLIENTS * PER_CLIENT // 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    acked_before_kill = set(acked)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    time.sleep(0.3)
    proc = _start(config)
    try:
        _wait_listening(port, proc)
        for t in threads:
            t.join(timeout=max(1.0, deadline - time.monotonic()))
        assert len(acked) == CLIENTS * PER_CLIENT, "clients could not deliver everything"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    assert proc.returncode == 0  # clean stop on SIGTERM

    engine = make_engine(f"sqlite:///{db}")
    with Session(engine) as session:
        rows = session.exec(select(Message.subject)).all()
    engine.dispose()
    subjects = [s for s in rows if s]
    assert len(subjects) == len(set(subjects)), "a message was stored twice"
    expected = {f"crash test {c}/{n}" for c in range(CLIENTS) for n in range(PER_CLIENT)}
    assert set(subjects) == expected, "a message that got 250 is missing"
    assert {f"crash test {c}/{n}" for c, n in acked_before_kill} <= set(subjects)
