"""The pipeline writes each ticket's failure signature; formats and follow-ups keep it."""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage
from email.utils import make_msgid

from sqlalchemy.engine import Engine
from sqlmodel import Session

from gateway.config import Config
from gateway.conversation.pipeline import AnalysisRunner
from gateway.inbound.ingest import ingest
from gateway.runner import run_until_idle
from storage.models import Message
from tests.support.tickets import ticket_of

FORMATS = [
    "2026-11-20 14:12:03 ERROR upstream connect error: 503 Service Unavailable from lb-eu-1\n",
    "2026-11-20 14:12:04,881 - app.client - ERROR - upstream connect error: "
    "503 Service Unavailable from lb-eu-1\n",
    '{"ts": "2026-11-20T14:12:05Z", "level": "error", "logger": "app.client", '
    '"msg": "upstream connect error: 503 Service Unavailable from lb-eu-1", '
    '"request_id": "9f1c2a77"}\n',
]


def mail(sender: str, body: str, log: str = "", reply_to: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "support@example.com"
    msg["Subject"] = "Re: Errors from your API" if reply_to else "Errors from your API"
    msg["Message-ID"] = make_msgid(domain="customer.test")
    if reply_to:
        msg["In-Reply-To"] = reply_to
        msg["References"] = reply_to
    msg.set_content(body)
    if log:
        msg.add_attachment(log, filename="app.log")
    return msg.as_bytes()


def test_three_log_formats_give_three_tickets_one_signature_and_follow_ups_keep_it(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    config = make_config()
    pks = [
        ingest(
            engine, mail(f"c{i}@shop{i}.test", "Our calls fail, log attached.", log), source="test"
        ).message_pk
        for i, log in enumerate(FORMATS)
    ]
    run_until_idle([AnalysisRunner(config, engine)])
    signatures = {ticket_of(engine, pk).signature for pk in pks}
    assert len(signatures) == 1 and None not in signatures
    with Session(engine) as session:
        first = session.get(Message, pks[0])
        assert first is not None and first.message_id
        first_id = f"<{first.message_id}>"
    follow = ingest(
        engine, mail("c0@shop0.test", "Any update?", reply_to=first_id), source="test"
    ).message_pk
    run_until_idle([AnalysisRunner(config, engine)])
    assert ticket_of(engine, follow).id == ticket_of(engine, pks[0]).id
    assert ticket_of(engine, follow).signature in signatures
