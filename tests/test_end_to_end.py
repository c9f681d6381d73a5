"""The whole product as an operator runs it: `supportgate serve`, real SMTP in and out.

Mail goes in through the real front door of a `serve` subprocess; the analysis runner
drafts replies; nothing leaves until a named rep releases a draft; then the sender
delivers exactly that one reply to a relay (an aiosmtpd sink on 127.0.0.1) with the
threading headers, and the customer's answer joins the same ticket.
"""

from __future__ import annotations

import email
import email.policy
import signal
import smtplib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlmodel import Session, select

from storage.db import make_engine, session_scope
from storage.models import Draft, Message, Outbox
from storage.review import release, save_draft
from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "gateway" / "samples"


class Sink:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    handler = Sink()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.mark.slow
def test_serve_drafts_waits_for_a_human_then_sends_exactly_once(
    tmp_path: Path, sink: tuple[Sink, int]
) -> None:
    relay, relay_port = sink
    smtp_port = free_port()
    db = tmp_path / "queue.sqlite3"
    config = tmp_path / "config.toml"
    config.write_text(
        f'[storage]\nurl = "sqlite:///{db}"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nrecipients = ["support@example.com"]\n'
        f'[kb]\ndir = "{ROOT / "kb"}"\n'
        "[runner]\npoll_interval = 0.2\n"
        f'[sender]\nenabled = true\nhost = "127.0.0.1"\nport = {relay_port}\n'
        'from_address = "support@example.com"\nfrom_name = "Example Support"\n'
        "backoff_base_seconds = 0.5\n"
        '[logging]\nlevel = "WARNING"\n'
    )
    log_path = tmp_path / "serve.log"
    log_file = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "--config", str(config), "serve"],
        cwd=ROOT,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: b"SMTP listening" in log_path.read_bytes(), 60, "the front door")
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as client:
            for name in ("02.eml", "07.eml", "12.eml"):
                client.sendmail(
                    "customer@customers.example",
                    ["support@example.com"],
                    (SAMPLES / name).read_bytes(),
                )
        engine = make_engine(f"sqlite:///{db}")

        def states() -> dict[str, str]:
            with Session(engine) as session:
                return {m.message_id or "": m.state for m in session.exec(select(Message)).all()}

        wait_for(
            lambda: set(states().values()) <= {"drafted", "suppressed"} and len(states()) == 3,
            120,
            "analysis of three messages",
        )
        assert states()["sample-12@customers.example"] == "suppressed"  # out-of-office
        time.sleep(1.5)
        assert relay.messages == [], "the machine sent mail on its own"

        with Session(engine) as session:
            draft = session.exec(
                select(Draft)
                .join(Message, Message.id == Draft.message_pk)  # type: ignore[arg-type]
                .where(Message.message_id == "sample-02@customers.example")
            ).one()
        with session_scope(engine) as session:
            save_draft(
                session=session,
                draft_id=int(draft.id or 0),
                body="Hi Tom,\n\nwe have reset MFA on your account; enrol a new device now.",
                expected_version=draft.version,
                actor="alice",
            )
        result = release(
            engine=engine,
            draft_ids=[int(draft.id or 0)],
            actor="alice",
            from_address="support@example.com",
        )
        assert len(result.outbox_ids) == 1

        wait_for(lambda: len(relay.messages) == 1, 30, "the released reply at the relay")
        time.sleep(1.5)
        assert len(relay.messages) == 1, "sent more than once"
        mail_from, rcpts, content = relay.messages[0]
        assert mail_from == "support@example.com"
        sent = email.message_from_bytes(content, policy=email.policy.default)
        assert rcpts == ["tom.becker@northwind.io"]
        assert sent["In-Reply-To"] == "<sample-02@customers.example>"
        assert f"[#{draft.ticket_id}]" in sent["Subject"]
        assert sent["Auto-Submitted"] == "no"
        assert "we have reset MFA" in sent.get_content()
        with Session(engine) as session:
            row = session.exec(select(Outbox)).one()
        assert row.state == "sent" and row.released_by == "alice"

        # The customer answers our reply; it joins the same ticket.
        reply = (
            f"From: Tom Becker <tom.becker@northwind.io>\r\nTo: support@example.com\r\n"
            f"Subject: Re: {sent['Subject']}\r\nMessage-ID: <tom-reply@northwind.io>\r\n"
            f"In-Reply-To: {sent['Message-ID']}\r\nReferences: {sent['Message-ID']}\r\n\r\n"
            "Thanks, that worked!\r\n"
        ).encode()
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as client:
            client.sendmail("tom.becker@northwind.io", ["support@example.com"], reply)
        wait_for(lambda: states().get("tom-reply@northwind.io") == "drafted", 60, "the reply")
        with Session(engine) as session:
            answer = session.exec(
                select(Message).where(Message.message_id == "tom-reply@northwind.io")
            ).one()
        assert answer.ticket_id == draft.ticket_id
        assert answer.thread_signal in {"in-reply-to", "references"}
        engine.dispose()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        finally:
            log_file.close()
    assert proc.returncode == 0, log_path.read_text(errors="replace")
