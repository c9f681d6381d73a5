"""A real aiosmtpd relay on 127.0.0.1 that records what it was sent, and the few steps
tests take to get a released reply in front of it (a config, a draft, a rep's release).

Plain Python: the sender tests, the threading and loop tests and benchmarks share it.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy.engine import Engine

from gateway.config import Config
from storage.db import session_scope
from storage.models import Draft, Message, MessageState, RawMessage, Ticket
from storage.review import release, save_draft
from tests.support.net import free_port

LONG_LINE = "x" * 1500
BODY = f"Grüße aus Köln — ümlauts and emoji 🚀 survive.\n{LONG_LINE}\nEnd of body."


class SinkHandler:
    """Stores every message; answers with queued replies first (e.g. 451, 550)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.mail_options: list[list[str]] = []
        self.replies: list[str] = []
        self.on_message: Callable[[bytes], None] | None = None
        self.peers: list[Any] = []  # the client end of the connection, per message
        self.hang_up_after_data = False
        self.hung_up = threading.Event()  # set once a hang-up has really happened
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.peers.append(session.peer)
            if self.hang_up_after_data:
                # The relay closes the session once it answered, as idle timeouts do.
                asyncio.get_running_loop().call_later(0.05, self._hang_up, server)
            if self.replies:
                return self.replies.pop(0)
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
            self.mail_options.append(list(envelope.mail_options))
        if self.on_message is not None:
            self.on_message(envelope.content)
        return "250 2.0.0 queued"

    def _hang_up(self, server: Any) -> None:
        server.transport.close()
        self.hung_up.set()

    def parsed(self) -> list[EmailMessage]:
        out = []
        for _, _, raw in self.messages:
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            out.append(msg)
        return out


@contextmanager
def running_sink(**smtp_params: Any) -> Iterator[tuple[SinkHandler, int]]:
    """A real aiosmtpd relay on 127.0.0.1 with a scriptable handler; stopped on exit."""
    handler = SinkHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **smtp_params)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def sender_config(
    make_config: Callable[..., Config],
    port: int,
    *,
    screen: dict[str, Any] | None = None,
    imap: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> Config:
    sender = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": port,
        "from_address": "support@example.com",
        "from_name": "Example Support",
        "timeout_seconds": 5.0,
        "backoff_base_seconds": 30.0,
        "max_attempts": 3,
        **extra,
    }
    return make_config(sender=sender, screen=screen or {}, imap=imap or [])


def make_draft(
    engine: Engine,
    *,
    body: str = BODY,
    to: str = "ada@customer.example",
    subject: str = "Re: API returns 503",
    customer_mid: str = "cust-1@customer.example",
) -> int:
    """A ticket with one inbound message and a drafted reply; returns the draft id."""
    raw = f"Message-ID: <{customer_mid}>\r\nSubject: x\r\n\r\nhelp\r\n".encode()
    digest = hashlib.sha256(raw).hexdigest()
    with session_scope(engine) as session:
        ticket = Ticket(subject="API returns 503", customer_addr=to, customer_name="Ada")
        session.add(ticket)
        if session.get(RawMessage, digest) is None:
            session.add(RawMessage(sha256=digest, size=len(raw), data=raw))
        session.flush()
        message = Message(
            dedupe_key=f"mid:{customer_mid}",
            message_id=customer_mid,
            sha256=digest,
            from_addr=to,
            subject="API returns 503",
            references=["earlier@customer.example"],
            state=MessageState.DRAFTED,
            ticket_id=ticket.id,
            thread_signal="new",
        )
        session.add(message)
        session.flush()
        draft = Draft(
            ticket_id=int(ticket.id or 0),
            message_pk=int(message.id or 0),
            to_addr=to,
            subject=subject,
            body=body,
        )
        session.add(draft)
        session.flush()
        return int(draft.id or 0)


def released(engine: Engine, **kwargs: Any) -> int:
    """Make a draft and release it as a named rep; returns the outbox id."""
    draft_id = make_draft(engine, **kwargs)
    result = release(
        engine=engine, draft_ids=[draft_id], actor="Rita Rep", from_address="support@example.com"
    )
    return result.outbox_ids[0]


def rep_releases(
    engine: Engine, draft_id: int, body: str = "Fixed it.", actor: str = "Rita Rep"
) -> int:
    """What a rep does in the review UI: write the reply, then release it."""
    with session_scope(engine) as session:
        draft = session.get(Draft, draft_id)
        assert draft is not None
        save_draft(
            session=session,
            draft_id=draft_id,
            body=body,
            expected_version=draft.version,
            actor=actor,
            unfilled=[],
        )
    result = release(
        engine=engine, draft_ids=[draft_id], actor=actor, from_address="support@example.com"
    )
    return result.outbox_ids[0]
