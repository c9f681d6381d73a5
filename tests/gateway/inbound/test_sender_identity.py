"""Who wrote a mail is read from its raw address, never from a decoded display name.

Each attack is real mail bytes through the real path: ingest stores the header facts,
the analysis runner threads and drafts on a temp SQLite, a rep releases, and the sender
delivers to a recording relay.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from gateway.config import Config
from gateway.conversation.pipeline import AnalysisRunner
from gateway.inbound.ingest import ingest
from gateway.inbound.parse import parse_message
from gateway.outbound.sender import SenderRunner
from gateway.runner import run_until_idle
from storage.models import AuditLog, Draft, DraftState, Message, MessageState
from tests.support.relay import SinkHandler, rep_releases, running_sink, sender_config


def b64(text: str) -> str:
    return f"=?utf-8?b?{base64.b64encode(text.encode()).decode()}?="


ALICE_FIRST = (
    b"From: Alice Admin <alice@corp.test>\r\nTo: support@example.com\r\n"
    b"Subject: Backups fail since Monday\r\nMessage-ID: <a1@corp.test>\r\n\r\n"
    b"Our nightly backup of db-3 fails with exit code 2.\r\n"
)


def mail(n: int, from_header: str, subject: str, extra: str = "") -> bytes:
    return (
        f"From: {from_header}\r\nTo: support@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: <m{n}@evil.test>\r\n{extra}\r\n"
        "Please look at this again, the backup still fails.\r\n"
    ).encode()


@pytest.fixture
def sink() -> Iterator[tuple[SinkHandler, int]]:
    with running_sink() as started:
        yield started


def process(engine: Engine, config: Config, raw: bytes) -> Message:
    pk = ingest(engine, raw, source="test").message_pk
    run_until_idle([AnalysisRunner(config, engine)])
    with Session(engine) as session:
        message = session.get(Message, pk)
        assert message is not None
        return message


def draft_of(engine: Engine, message: Message) -> Draft:
    with Session(engine) as session:
        return session.exec(select(Draft).where(Draft.message_pk == message.id)).one()


def test_address_hidden_in_an_encoded_name_does_not_join_alices_ticket(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    config = make_config()
    alice = process(engine, config, ALICE_FIRST)
    pending = draft_of(engine, alice)
    subject = f"Re: Backups fail since Monday [#{alice.ticket_id}]"
    forged = process(
        engine, config, mail(1, f"{b64('alice@corp.test')} <attacker@evil.test>", subject)
    )
    # Stored at ingest and kept by the pipeline: the real address, the name as a name.
    assert forged.from_addr == "attacker@evil.test"
    assert forged.from_name == "alice@corp.test"
    assert forged.ticket_id != alice.ticket_id
    assert forged.thread_signal == "new:token-ignored"
    assert draft_of(engine, alice).state == pending.state != DraftState.STALE
    assert draft_of(engine, forged).to_addr == "attacker@evil.test"


@pytest.mark.parametrize(
    "sender",
    [
        # Not an encoded word by RFC 2047 (an `@` in a Q word), but clients decode it.
        "=?utf-8?q?alice@corp.test?= <attacker@evil.test>",
        '"alice@corp.test" <attacker@evil.test>',
        "alice@corp.test <attacker@evil.test>",
    ],
)
def test_other_spellings_of_alice_in_the_name_are_only_names(sender: str) -> None:
    parsed = parse_message(mail(2, sender, "Re: [#1]"))
    assert parsed.from_addr == "attacker@evil.test"


def test_line_break_in_an_encoded_name_cannot_add_a_recipient(
    engine: Engine, make_config: Callable[..., Config], sink: tuple[SinkHandler, int]
) -> None:
    handler, port = sink
    config = sender_config(make_config, port)
    name = b64("Evil\r\nBcc: victim@evil.test\x00")
    reply_to = b64("Evil <victim@evil.test>")
    raw = mail(
        3,
        f"{name} <attacker@evil.test>",
        "Backup question",
        extra=f"Reply-To: {reply_to} <attacker@evil.test>\r\nCc: {b64('victim@evil.test')} "
        "<helpdesk@example.com>\r\n",
    )
    parsed = parse_message(raw)
    assert parsed.cc == ("helpdesk@example.com",)
    assert not set("\r\n\x00") & set(parsed.from_name)
    message = process(engine, config, raw)
    assert message.state == MessageState.DRAFTED, message.error
    assert message.from_addr == "attacker@evil.test"
    draft = draft_of(engine, message)
    assert draft.to_addr == "attacker@evil.test"
    rep_releases(engine, int(draft.id or 0), body="Please send us the backup log.")
    run_until_idle([SenderRunner(config, engine)])
    [(_, rcpts, sent)] = handler.messages
    assert rcpts == ["attacker@evil.test"]
    assert b"victim" not in sent


def test_token_from_a_colleague_joins_without_staling_the_customers_draft(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    config = make_config()
    alice = process(engine, config, ALICE_FIRST)
    pending = draft_of(engine, alice)
    subject = f"Re: Backups fail since Monday [#{alice.ticket_id}]"
    colleague = process(engine, config, mail(4, "Bob Ops <bob@corp.test>", subject))
    assert colleague.ticket_id == alice.ticket_id
    assert colleague.thread_signal == "subject-token:new-sender"
    # Alice is about to be told something; another sender must not change that.
    assert draft_of(engine, alice).state == pending.state != DraftState.STALE
    assert draft_of(engine, colleague).to_addr == "bob@corp.test"
    with Session(engine) as session:
        [row] = session.exec(
            select(AuditLog).where(
                AuditLog.action == "thread.new_sender", AuditLog.entity_id == colleague.id
            )
        ).all()
    assert row.details == {"ticket": alice.ticket_id, "customer": "alice@corp.test"}
    # Alice herself still moves the conversation on.
    again = process(engine, config, ALICE_FIRST.replace(b"<a1@", b"<a2@").replace(
        b"Subject: Backups", f"Subject: Re: [#{alice.ticket_id}] Backups".encode()
    ))  # fmt: skip
    assert again.thread_signal == "subject-token"
    # Her new mail gets the ticket's one open draft; the earlier one is superseded.
    assert draft_of(engine, alice).state == DraftState.SUPERSEDED
