"""One reply per customer mail: a newer draft supersedes the earlier ones still waiting,
a rep's edits in them are kept and named, and a ticket answered after a draft was
written needs an explicit yes before a second reply goes out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from gateway.config import Config
from gateway.conversation.pipeline import AnalysisRunner
from gateway.inbound.ingest import ingest
from gateway.runner import run_until_idle
from storage import review as rv
from storage.db import session_scope
from storage.models import AuditLog, Draft, DraftState, Outbox, utcnow
from storage.seed import add_ticket

FROM = "support@help.example.org"


def mail(mid: str, body: str, *, sender: str = "dana@shop.example", reply_to: str = "") -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Dana <{sender}>"
    msg["To"] = "support@example.com"
    msg["Subject"] = ("Re: " if reply_to else "") + "Checkout fails with error 502"
    msg["Message-ID"] = f"<{mid}@shop.example>"
    if reply_to:
        msg["In-Reply-To"] = f"<{reply_to}@shop.example>"
        msg["References"] = f"<{reply_to}@shop.example>"
    msg.set_content(body)
    return msg.as_bytes()


def drafts(engine: Engine) -> list[Draft]:
    with Session(engine) as session:
        return list(session.exec(select(Draft).order_by(col(Draft.id))).all())


def audits(engine: Engine, action: str) -> list[AuditLog]:
    with Session(engine) as session:
        return list(session.exec(select(AuditLog).where(AuditLog.action == action)).all())


def test_a_second_mail_supersedes_the_first_draft_and_keeps_the_reps_text(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    config = make_config()
    ingest(engine, mail("m1", "Hello, our checkout fails with error 502 since this morning."),
           source="test")  # fmt: skip
    run_until_idle([AnalysisRunner(config, engine)])
    (first,) = drafts(engine)
    edited = "Hi Dana,\n\nwe restarted the gateway; please try again.\n\nBest regards"
    with session_scope(engine) as session:
        rv.save_draft(session=session, draft_id=int(first.id or 0), body=edited,
                      expected_version=first.version, actor="alice")  # fmt: skip
    ingest(engine, mail("m2", "Any news? Still failing.", reply_to="m1"), source="test")
    run_until_idle([AnalysisRunner(config, engine)])

    old, new = drafts(engine)
    assert old.id == first.id and old.state == DraftState.SUPERSEDED
    assert old.body == edited  # the rep's words stay on the row
    assert new.state in rv.RELEASABLE_STATES and new.ticket_id == old.ticket_id
    (row,) = audits(engine, "draft.superseded")
    assert row.entity_id == old.id
    assert row.details["by_draft"] == new.id and row.details["edited_by"] == ["alice"]
    assert new.evidence["superseded_edits"][0]["draft_id"] == old.id
    assert any(f"#{old.id} edited by alice" in f for f in new.evidence["brief"]["flags"])
    # Only one of them can go out; the superseded one says why.
    assert "superseded" in "; ".join(rv.release_problems(old))
    with pytest.raises(rv.ReviewError, match="superseded"):
        rv.release(engine=engine, draft_ids=[int(old.id or 0)], actor="alice", from_address=FROM)
    rv.release(engine=engine, draft_ids=[int(new.id or 0)], actor="alice", from_address=FROM)
    with Session(engine) as session:
        assert len(session.exec(select(Outbox)).all()) == 1


def test_another_senders_mail_leaves_the_customers_draft_alone(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    config = make_config()
    ingest(engine, mail("c1", "Our checkout fails with error 502 since this morning."),
           source="test")  # fmt: skip
    run_until_idle([AnalysisRunner(config, engine)])
    (customer,) = drafts(engine)
    colleague = mail("c2", "Same here for our team.", sender="lee@shop.example")
    colleague = colleague.replace(
        b"Subject: Checkout", f"Subject: [#{customer.ticket_id}] Checkout".encode()
    )
    ingest(engine, colleague, source="test")
    run_until_idle([AnalysisRunner(config, engine)])
    first, second = drafts(engine)
    assert first.ticket_id == second.ticket_id
    assert first.state in rv.OPEN_STATES and second.state in rv.OPEN_STATES
    assert audits(engine, "draft.superseded") == []


def test_release_after_the_ticket_was_answered_needs_a_yes(engine: Engine) -> None:
    ticket_id, first = add_ticket(
        engine,
        sender="sam@corp.example",
        subject="VPN drops",
        body="The VPN drops every hour.",
        received_at=utcnow() - timedelta(hours=1),
    )
    with session_scope(engine) as session:
        copy = Draft(ticket_id=ticket_id, message_pk=session.get(Draft, first).message_pk,  # type: ignore[union-attr]
                     to_addr="sam@corp.example", subject="Re: VPN drops",
                     body="Hi Sam,\n\nplease send the client log.\n\nBest regards")  # fmt: skip
        session.add(copy)
        session.flush()
        second = int(copy.id or 0)
    later = utcnow() + timedelta(minutes=1)
    rv.release(engine=engine, draft_ids=[second], actor="bob", from_address=FROM, now=later)

    with pytest.raises(rv.AlreadyAnswered, match="answered by bob") as caught:
        rv.release(engine=engine, draft_ids=[first], actor="alice", from_address=FROM)
    assert caught.value.ticket_id == ticket_id
    with Session(engine) as session:
        (candidate,) = rv.bulk_candidates(session=session, draft_ids=[first])
    assert not candidate.eligible and candidate.problems[0].startswith("answered: bob")
    with Session(engine) as session:
        assert len(session.exec(select(Outbox)).all()) == 1

    result = rv.release(engine=engine, draft_ids=[first], actor="alice", from_address=FROM,
                        confirm_answered=True)  # fmt: skip
    assert len(result.outbox_ids) == 1
    (row,) = [a for a in audits(engine, "draft.released") if a.entity_id == first]
    assert row.actor == "alice" and row.details["after_reply"] is not None
