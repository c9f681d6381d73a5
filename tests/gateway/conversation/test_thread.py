"""Threading through the real path: ingest → pipeline → release → sender → customer reply."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from gateway.config import Config
from gateway.conversation.pipeline import AnalysisRunner
from gateway.conversation.thread import NOT_A_PARTICIPANT, OUT_OF_RANGE, find_ticket, is_free_mail
from gateway.inbound.ingest import ingest
from gateway.inbound.parse import parse_message
from gateway.outbound.sender import SenderRunner
from gateway.runner import run_until_idle
from storage.db import session_scope
from storage.models import AuditLog, Draft, DraftState, Message, MessageState, Outbox
from tests.support.relay import SinkHandler, rep_releases, running_sink, sender_config


@pytest.fixture
def sink() -> Iterator[tuple[SinkHandler, int]]:
    with running_sink() as started:
        yield started


def customer_mail(
    n: int,
    subject: str = "Pods OOMKilled after upgrade",
    *,
    sender: str = "heidi@customer.example",
    headers: str = "",
) -> bytes:
    return (
        f"From: Heidi Customer <{sender}>\r\nTo: support@example.com\r\n"
        f"Subject: {subject}\r\nMessage-ID: <c{n}@customer.example>\r\n{headers}"
        f"Date: Thu, 26 Nov 2026 14:0{n}:00 +0000\r\n\r\n"
        f"Our pod api-7f9 is OOMKilled with exit code 137 (mail {n}).\r\n"
    ).encode()


def process(engine: Engine, config: Config, raw: bytes) -> Message:
    pk = ingest(engine, raw, source="test").message_pk
    run_until_idle([AnalysisRunner(config, engine)])
    with Session(engine) as session:
        message = session.get(Message, pk)
        assert message is not None
        return message


def draft_of(engine: Engine, message_pk: int) -> Draft:
    with Session(engine) as session:
        return session.exec(select(Draft).where(Draft.message_pk == message_pk)).one()


def answered_ticket(
    engine: Engine, config: Config, handler: SinkHandler
) -> tuple[Message, email.message.EmailMessage]:
    """A customer writes, a rep answers, the sender delivers; returns (first, our reply)."""
    first = process(engine, config, customer_mail(1))
    assert first.thread_signal == "new" and first.state == MessageState.DRAFTED
    rep_releases(engine, int(draft_of(engine, int(first.id or 0)).id or 0))
    assert SenderRunner(config, engine).run_once() == 1
    ours = email.message_from_bytes(handler.messages[-1][2], policy=email.policy.default)
    assert isinstance(ours, email.message.EmailMessage)
    return first, ours


def test_customer_reply_to_our_sent_message_joins_the_ticket(
    engine: Engine, make_config: Callable[..., Config], sink: tuple[SinkHandler, int]
) -> None:
    handler, port = sink
    config = sender_config(make_config, port)
    first, ours = answered_ticket(engine, config, handler)
    mid = ours["Message-ID"]
    reply_headers = f"In-Reply-To: {mid}\r\nReferences: <c1@customer.example> {mid}\r\n"
    reply = process(
        engine, config, customer_mail(2, f"Re: {ours['Subject']}", headers=reply_headers)
    )
    assert reply.ticket_id == first.ticket_id
    assert reply.thread_signal == "in-reply-to"
    assert reply.state == MessageState.DRAFTED


def test_stripped_references_join_by_subject_token(
    engine: Engine, make_config: Callable[..., Config], sink: tuple[SinkHandler, int]
) -> None:
    handler, port = sink
    config = sender_config(make_config, port)
    first, ours = answered_ticket(engine, config, handler)
    assert f"[#{first.ticket_id}]" in ours["Subject"]
    reply = process(engine, config, customer_mail(2, f"RE: {ours['Subject']}"))
    assert reply.ticket_id == first.ticket_id
    assert reply.thread_signal == "subject-token"


def test_fresh_mail_with_the_same_subject_is_a_new_ticket(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    config = make_config()
    first = process(engine, config, customer_mail(1))
    again = process(engine, config, customer_mail(2))
    other = process(engine, config, customer_mail(3, sender="ivan@other.example"))
    assert len({first.ticket_id, again.ticket_id, other.ticket_id}) == 3
    assert again.thread_signal == other.thread_signal == "new"


def test_references_alone_join_and_any_reference_counts(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    config = make_config()
    first = process(engine, config, customer_mail(1))
    refs = "References: <unknown@elsewhere.example> <c1@customer.example> <gone@x.example>\r\n"
    reply = process(engine, config, customer_mail(2, "Re: something else", headers=refs))
    assert reply.ticket_id == first.ticket_id
    assert reply.thread_signal == "references"


def test_new_mail_on_a_ticket_supersedes_the_pending_draft(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    """One open draft per ticket: the customer's new mail gets the draft, the earlier
    one is kept (with any edits) as superseded and can no longer be released."""
    config = make_config()
    first = process(engine, config, customer_mail(1))
    pending = draft_of(engine, int(first.id or 0))
    assert pending.state in (DraftState.DRAFTED, DraftState.NEEDS_TRIAGE)
    follow_up = process(
        engine, config, customer_mail(2, "more", headers="In-Reply-To: <c1@customer.example>\r\n")
    )
    assert follow_up.ticket_id == first.ticket_id
    with Session(engine) as session:
        old = session.get(Draft, pending.id)
        assert old is not None and old.state == DraftState.SUPERSEDED
        assert old.version == pending.version + 2  # stale on arrival, then superseded
        current = session.exec(
            select(Draft).where(
                Draft.ticket_id == first.ticket_id,
                col(Draft.state).not_in([DraftState.STALE, DraftState.SUPERSEDED]),
            )
        ).all()
        assert [d.message_pk for d in current] == [follow_up.id]


def test_auto_reply_on_a_ticket_joins_it_without_staling_the_draft(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    config = make_config()
    first = process(engine, config, customer_mail(1))
    pending = draft_of(engine, int(first.id or 0))
    auto = "In-Reply-To: <c1@customer.example>\r\nAuto-Submitted: auto-replied\r\n"
    ooo = process(engine, config, customer_mail(2, "Out of office", headers=auto))
    assert ooo.state == MessageState.SUPPRESSED
    assert ooo.suppression_reason is not None and "Auto-Submitted" in ooo.suppression_reason
    assert ooo.ticket_id == first.ticket_id
    assert draft_of(engine, int(first.id or 0)).state == pending.state


def test_reply_to_a_released_but_unsent_message_finds_its_ticket(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    config = make_config()
    first = process(engine, config, customer_mail(1))
    rep_releases(engine, int(draft_of(engine, int(first.id or 0)).id or 0))
    with Session(engine) as session:
        queued = session.exec(select(Outbox)).one()
    parsed = parse_message(
        customer_mail(2, "Re: x", headers=f"In-Reply-To: {queued.message_id}\r\n")
    )
    with session_scope(engine) as session:
        assert find_ticket(session, parsed) == (first.ticket_id, "in-reply-to")


def test_token_for_a_missing_ticket_is_a_new_ticket(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    config = make_config()
    message = process(engine, config, customer_mail(1, "Re: old thing [#999999]"))
    assert message.thread_signal == "new"


def test_huge_references_header_still_threads(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    config = make_config()
    first = process(engine, config, customer_mail(1))
    noise = " ".join(f"<noise{i}@spam.example>" for i in range(5000))
    refs = f"References: <c1@customer.example> {noise} <junk\r\n"
    reply = process(engine, config, customer_mail(2, "Re: x", headers=refs))
    assert reply.state == MessageState.DRAFTED
    # The root reference counts however long the list.
    assert reply.ticket_id == first.ticket_id and reply.thread_signal == "references"
    late = f"References: <root@elsewhere.example> {noise} <c1@customer.example>\r\n"
    reply2 = process(engine, config, customer_mail(3, "Re: x", headers=late))
    assert reply2.ticket_id == first.ticket_id and reply2.thread_signal == "references"
    middle = f"References: <root@elsewhere.example> <c1@customer.example> {noise}\r\n"
    reply3 = process(engine, config, customer_mail(4, "Re: x", headers=middle))
    assert reply3.thread_signal == "new"  # beyond the ids we look at: bounded work


def token_ignored_audits(engine: Engine, message_pk: int) -> list[AuditLog]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(AuditLog).where(
                    AuditLog.action == "thread.token_ignored", AuditLog.entity_id == message_pk
                )
            ).all()
        )


@pytest.mark.parametrize("sender", ["heidi@customer.example", "HEIDI@Customer.Example"])
def test_token_joins_mail_from_the_customer(
    engine: Engine, make_config: Callable[..., Config], sender: str
) -> None:
    config = make_config()
    first = process(engine, config, customer_mail(1))
    pending = draft_of(engine, int(first.id or 0))
    # References stripped by the client; only our token is left.
    subject = f"RE: Pods OOMKilled after upgrade [#{first.ticket_id}]"
    reply = process(engine, config, customer_mail(2, subject, sender=sender))
    assert reply.ticket_id == first.ticket_id
    assert reply.thread_signal == "subject-token"
    assert draft_of(engine, int(first.id or 0)).state == DraftState.SUPERSEDED != pending.state
    assert token_ignored_audits(engine, int(reply.id or 0)) == []


def test_token_from_a_colleague_joins_without_staling_the_customers_draft(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    """Same company domain, another person: the mail joins the ticket with its own draft,
    and the draft written for the customer stays releasable."""
    config = make_config()
    first = process(engine, config, customer_mail(1))
    pending = draft_of(engine, int(first.id or 0))
    subject = f"RE: Pods OOMKilled after upgrade [#{first.ticket_id}]"
    reply = process(engine, config, customer_mail(2, subject, sender="bob@customer.example"))
    assert reply.ticket_id == first.ticket_id
    assert reply.thread_signal == "subject-token:new-sender"
    assert draft_of(engine, int(first.id or 0)).state == pending.state


def test_token_joins_a_sender_seen_on_the_ticket_before(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    config = make_config()
    first = process(engine, config, customer_mail(1, sender="heidi@gmail.com"))
    # A second address of the customer's, added to the conversation by a threaded reply.
    cc = process(
        engine,
        config,
        customer_mail(
            2, "Re: x", sender="h.ops@gmail.com", headers="In-Reply-To: <c1@customer.example>\r\n"
        ),
    )
    assert cc.ticket_id == first.ticket_id
    reply = process(
        engine, config, customer_mail(3, f"Re: [#{first.ticket_id}]", sender="h.ops@gmail.com")
    )
    assert reply.ticket_id == first.ticket_id and reply.thread_signal == "subject-token"


@pytest.mark.parametrize(
    ("customer", "stranger"),
    [
        ("heidi@customer.example", "desk@other-helpdesk.example"),
        # A free-mail domain shared with the customer says nothing.
        ("heidi@gmail.com", "mallory@gmail.com"),
        ("heidi@gmx.de", "mallory@gmx.de"),
    ],
)
def test_token_from_an_unrelated_sender_starts_a_new_ticket(
    engine: Engine, make_config: Callable[..., Config], customer: str, stranger: str
) -> None:
    config = make_config()
    first = process(engine, config, customer_mail(1, sender=customer))
    pending = draft_of(engine, int(first.id or 0))
    token = f"[#{first.ticket_id}]"
    other = process(engine, config, customer_mail(2, f"Re: Invoice {token}", sender=stranger))
    assert other.ticket_id is not None and other.ticket_id != first.ticket_id
    assert other.thread_signal == "new:token-ignored"
    assert other.state == MessageState.DRAFTED
    # The customer's conversation is untouched: the draft waiting for review stays.
    assert draft_of(engine, int(first.id or 0)).state == pending.state
    [row] = token_ignored_audits(engine, int(other.id or 0))
    assert row.details["ticket"] == other.ticket_id
    assert row.details["tokens"] == [
        {"token": str(first.ticket_id), "ticket": first.ticket_id, "reason": NOT_A_PARTICIPANT}
    ]


@pytest.mark.parametrize(
    "token", ["12345678901", "2147483648", "0", "99999999999999999999999999999999"]
)
def test_out_of_range_token_is_ignored(
    engine: Engine, make_config: Callable[..., Config], token: str
) -> None:
    config = make_config()
    message = process(engine, config, customer_mail(1, f"Re: your order [#{token}]"))
    assert message.state == MessageState.DRAFTED
    assert message.thread_signal == "new:token-ignored"
    [row] = token_ignored_audits(engine, int(message.id or 0))
    assert row.details["tokens"] == [{"token": token, "ticket": None, "reason": OUT_OF_RANGE}]


def test_free_mail_domains() -> None:
    for domain in ("gmail.com", "Outlook.com", "yahoo.co.uk", "gmx.net", "proton.me", "icloud.com"):
        assert is_free_mail(domain), domain
    for domain in ("customer.example", "gmx.example", "outlook.customer.example"):
        assert not is_free_mail(domain), domain
