"""Merge two tickets of one problem; split a message off into its own ticket."""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from gateway.config import Config
from gateway.conversation.pipeline import AnalysisRunner
from gateway.inbound.ingest import ingest
from gateway.runner import run_until_idle
from storage.desk.merge import merge, split
from storage.models import AuditLog, Draft, Message, Ticket
from storage.review.types import ReviewError


def mail(subject: str, body: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Dana <dana@shop.example>"
    msg["To"] = "support@example.com"
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="shop.example")
    msg.set_content(body)
    return msg.as_bytes()


def ticket_ids(engine: Engine) -> dict[int, int]:
    with Session(engine) as session:
        return {int(m.id or 0): int(m.ticket_id or 0) for m in session.exec(select(Message))}


def test_merge_moves_everything_and_split_takes_one_message_out(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    config = make_config()
    a = ingest(engine, mail("Login fails", "I cannot log in since today."), source="t").message_pk
    b = ingest(
        engine, mail("Still locked out", "Also my colleague cannot log in."), source="t"
    ).message_pk
    run_until_idle([AnalysisRunner(config, engine)])
    ta, tb = ticket_ids(engine)[a], ticket_ids(engine)[b]
    assert ta != tb
    merge(engine, tb, ta, actor="rita")
    assert ticket_ids(engine) == {a: ta, b: ta}
    with Session(engine) as session:
        merged = session.get(Ticket, tb)
        assert merged is not None and (merged.status, merged.linked_ticket) == ("merged", ta)
        drafts = session.exec(select(Draft)).all()
        assert {d.ticket_id for d in drafts} == {ta}
        (row,) = session.exec(select(AuditLog).where(AuditLog.action == "ticket.merged")).all()
        assert row.details["moved"]["message"] == 1 and row.actor == "rita"
    with pytest.raises(ReviewError):
        merge(engine, tb, ta, actor="rita")
    with pytest.raises(ReviewError):
        merge(engine, ta, ta, actor="rita")

    new = split(engine, b, actor="rita")
    assert ticket_ids(engine) == {a: ta, b: new}
    with Session(engine) as session:
        ticket = session.get(Ticket, new)
        assert ticket is not None and ticket.linked_ticket == ta
        moved = session.exec(select(Draft).where(Draft.message_pk == b)).all()
        assert moved and all(d.ticket_id == new for d in moved)
    with pytest.raises(ReviewError, match="no other message"):
        split(engine, b, actor="rita")
