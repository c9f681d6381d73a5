"""Tickets have an owner, a status and a clock: routing, priority, due times, and the
open → pending → open lifecycle through the real SMTP front door and sender."""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from freezegun import freeze_time
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from gateway.cli.status import collect_status
from gateway.config import Config
from gateway.conversation.desk import desk_from
from gateway.conversation.pipeline import AnalysisRunner
from gateway.inbound.ingest import ingest
from gateway.outbound.sender import SenderRunner
from gateway.runner import run_until_idle
from storage.desk.lifecycle import change_status, solve_quiet
from storage.desk.owners import assign, set_priority, take
from storage.models import AuditLog, Draft, LabelCorrection, Message, Ticket, utcnow
from storage.review import release
from tests.support.relay import running_sink, sender_config
from tests.support.tickets import ticket_of

DESK = {
    "desk": {"timezone": "Europe/Berlin", "vip": ["@bigcorp.example"], "solve_after_days": 5},
    "team": [{"name": "security", "members": ["sam"]}, {"name": "billing", "members": ["bea"]}],
    "routing": [
        {"name": "security reports", "intent": "security_report", "team": "security"},
        {"name": "bigcorp", "sender_domain": "bigcorp.example", "owner": "vic"},
        {"name": "default", "team": "billing"},
    ],
    "sla": [
        {"intent": "outage_report", "first_response": "1h", "next_response": "2h"},
        {"first_response": "8bh", "next_response": "1d"},
    ],
}
SECURITY = "We found that your API leaks other customers' tokens; this is a security report."
OUTAGE = "URGENT: production is down, every request to api.example.com returns 503 since 09:00!"


def mail(sender: str, subject: str, body: str, at: datetime | None = None, **headers: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "support@example.com"
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="customer.example")
    msg["Date"] = format_datetime(at or utcnow())
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg.as_bytes()


def test_routing_priority_and_business_hours_due(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    config = make_config(**DESK)
    saturday = datetime(2026, 11, 28, 12, tzinfo=UTC)
    with freeze_time(saturday + timedelta(minutes=5)):
        sec = ingest(
            engine, mail("eve@shop.example", "Token leak", SECURITY, saturday), source="smtp:x"
        ).message_pk
        big = ingest(
            engine,
            mail("ops@bigcorp.example", "Invoice", "Please resend the October invoice.", saturday),
            source="smtp:x",
        ).message_pk
        down = ingest(
            engine, mail("kim@shop2.example", "Down", OUTAGE, saturday), source="smtp:x"
        ).message_pk
        run_until_idle([AnalysisRunner(config, engine)])
    t_sec, t_big, t_down = (ticket_of(engine, pk) for pk in (sec, big, down))
    assert (t_sec.team, t_sec.owner) == ("security", None)
    assert t_sec.routed_by == "[[routing]] security reports" and t_sec.priority == "high"
    # Monday 09:00 Berlin is 08:00 UTC: eight business hours end at 16:00 UTC.
    assert t_sec.reply_due == datetime(2026, 11, 30, 16, tzinfo=UTC)
    assert (t_big.owner, t_big.priority) == ("vic", "high")  # a VIP: one step up
    assert t_down.priority == "urgent" and t_down.team == "billing"
    assert t_down.reply_due == saturday + timedelta(hours=1)
    assert "urgent wording" in (t_down.priority_by or "")
    # `status --json` on the Monday afternoon: the outage's hour is long gone.
    with freeze_time(datetime(2026, 11, 30, 15, tzinfo=UTC)):
        desk = collect_status(engine)["desk"]
    assert desk["breached_count"] == 1 and desk["breached"][0]["ticket"] == t_down.id
    assert desk["oldest_waiting_by_team"]["security"]["ticket"] == t_sec.id


def test_open_pending_open_through_smtp_and_the_sender(
    engine: Engine,
    make_config: Callable[..., Config],
    smtp_server: Callable[..., tuple[Any, int]],
) -> None:
    _, port = smtp_server()
    with running_sink() as (sink, relay_port):
        sender = vars(sender_config(make_config, relay_port).sender)
        config = make_config(sender=sender, **DESK)
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.sendmail(
                "kim@shop2.example",
                ["support@example.com"],
                mail("kim@shop2.example", "Down", OUTAGE),
            )
        run_until_idle([AnalysisRunner(config, engine)])
        with Session(engine) as session:
            draft = session.exec(select(Draft)).one()
            first = session.exec(select(Message)).one()
        ticket = ticket_of(engine, int(first.id or 0))
        assert ticket.status == "open" and ticket.reply_due is not None
        with Session(engine) as session:
            d = session.get(Draft, draft.id)
            assert d is not None
            d.unfilled = []
            session.add(d)
            session.commit()
        release(
            engine=engine,
            draft_ids=[int(draft.id or 0)],
            actor="rita",
            from_address="support@example.com",
        )
        run_until_idle([SenderRunner(config, engine)])
        assert len(sink.parsed()) == 1
        ticket = ticket_of(engine, int(first.id or 0))
        assert ticket.status == "pending" and ticket.reply_due is None
        assert ticket.first_response_at is not None
        # The customer answers our reply: open again, the next-response clock runs.
        reply_to = sink.parsed()[0]["Message-ID"]
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.sendmail(
                "kim@shop2.example",
                ["support@example.com"],
                mail("kim@shop2.example", "Re: Down", "Still down here.", In_Reply_To=reply_to),
            )
        run_until_idle([AnalysisRunner(config, engine)])
        ticket = ticket_of(engine, int(first.id or 0))
        assert ticket.status == "open" and ticket.reply_due is not None
    with Session(engine) as session:
        moves = session.exec(select(AuditLog).where(AuditLog.action == "ticket.status")).all()
    assert [(m.details["from"], m.details["to"], m.actor) for m in moves][-2:] == [
        ("open", "pending", moves[-2].actor),
        ("pending", "open", "desk"),
    ]


def test_rep_acts_closed_tickets_spawn_linked_ones_and_quiet_pending_ones_solve(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    config = make_config(**DESK)
    raw = mail("lu@shop3.example", "Invoice", "Please resend the October invoice.")
    pk = ingest(engine, raw, source="smtp:x").message_pk
    run_until_idle([AnalysisRunner(config, engine)])
    tid = int(ticket_of(engine, pk).id or 0)
    take(engine, tid, actor="bea")
    assign(engine, tid, actor="bea", owner="sam", team="security", desk=desk_from(config))
    set_priority(engine, tid, "low", actor="sam")
    ticket = ticket_of(engine, pk)
    assert (ticket.owner, ticket.team, ticket.priority, ticket.priority_by) == (
        "sam",
        "security",
        "low",
        "sam",
    )
    change_status(engine, tid, "pending", actor="sam")
    with Session(engine) as session:
        t = session.get(Ticket, tid)
        assert t is not None
        t.status_at = utcnow() - timedelta(days=6)
        session.add(t)
        session.commit()
    assert solve_quiet(engine, desk_from(config)) == 1
    assert ticket_of(engine, pk).status == "solved"
    change_status(engine, tid, "closed", actor="sam")
    with Session(engine) as session:
        old = session.get(Message, pk)
        assert old is not None
    again = ingest(
        engine,
        mail(
            "lu@shop3.example", "Re: Invoice", "One more thing.", In_Reply_To=f"<{old.message_id}>"
        ),
        source="smtp:x",
    ).message_pk
    run_until_idle([AnalysisRunner(config, engine)])
    new = ticket_of(engine, again)
    assert new.id != tid and new.linked_ticket == tid and new.status == "open"
    assert ticket_of(engine, pk).status == "closed"
    change_status(engine, int(new.id or 0), "spam", actor="sam")
    with Session(engine) as session:
        labels = session.exec(select(LabelCorrection)).all()
    assert [lc.new_label for lc in labels] == ["spam"]
