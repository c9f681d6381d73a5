"""The pipeline end to end with the real analyser: drafts carry evidence a rep can check."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from gateway.config import Config
from gateway.conversation.pipeline import AnalysisRunner
from gateway.inbound.ingest import ingest
from gateway.runner import run_until_idle
from storage.db import session_scope
from storage.models import (
    AnalysisRecord,
    AuditLog,
    Draft,
    DraftState,
    Message,
    MessageState,
    Outbox,
    OutboxState,
    SenderRate,
    utcnow,
)
from storage.queue import requeue

REPO = Path(__file__).resolve().parents[3]
OUTAGE = REPO / "gateway" / "samples" / "01.eml"
SCREENING = REPO / "tests" / "fixtures" / "screening"


def run(engine: Engine, config: Config, raw: bytes) -> tuple[Message, Draft | None]:
    pk = ingest(engine, raw, source="test").message_pk
    run_until_idle([AnalysisRunner(config, engine)])
    with Session(engine) as session:
        message = session.get(Message, pk)
        assert message is not None
        draft = session.exec(select(Draft).where(Draft.message_pk == pk)).first()
        return message, draft


def test_outage_mail_gets_a_filled_draft_with_checkable_evidence(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    config = make_config(kb={"dir": str(REPO / "kb")})
    message, draft = run(engine, config, OUTAGE.read_bytes())
    assert message.state == MessageState.DRAFTED, message.error
    assert draft is not None and draft.state == DraftState.DRAFTED
    assert draft.intent == "outage_report"
    assert draft.article_id == "incident-5xx"
    assert (
        draft.subject
        == f"Re: URGENT: 503 errors on api.acme-shop.com since 07:00 [#{message.ticket_id}]"
    )
    # Values come from the mail; nothing is invented.
    assert draft.body.startswith("Hi Dana Whitfield,")
    assert "eu-west-1" in draft.body and "api.acme-shop.com" in draft.body
    assert draft.unfilled == []
    # An urgent sender is acknowledged; no incident is claimed that nobody declared.
    assert "urgent" in draft.body
    assert "we are aware" not in draft.body.lower()
    assert "investigating your report" in draft.body
    # The log reaches the reply: its key line is quoted.
    assert "upstream timed out" in draft.body
    brief = draft.evidence["brief"]
    assert brief["article"] == "incident-5xx" and brief["log"]["attachment"] == "nginx-error.log.gz"
    assert any(flag.startswith("urgent") for flag in brief["flags"])
    # The rationale names real evidence: intent, a quoted value, the log, the article.
    assert draft.rationale.startswith(f"outage_report {draft.confidence:.2f} — ")
    assert "'503' in body" in draft.rationale
    assert "ERROR lines in nginx-error.log.gz" in draft.rationale
    assert "matched KB 'Service errors" in draft.rationale
    # Evidence offsets point at the text the analysis read.
    with Session(engine) as session:
        record = session.exec(
            select(AnalysisRecord).where(AnalysisRecord.message_pk == message.id)
        ).one()
    reply_text = record.reply_text
    body_entities = [e for e in draft.evidence["entities"] if e["source"] == "body"]
    assert body_entities
    for ent in body_entities:
        assert reply_text[ent["start"] : ent["end"]] == ent["text"]
    logs = draft.evidence["logs"]
    assert logs and logs[0]["attachment"] == "nginx-error.log.gz" and logs[0]["lines"]
    assert draft.suggestions[0]["article_id"] == "incident-5xx"
    assert draft.suggestions[0]["matched_terms"]


def test_broken_kb_still_drafts_and_shows_why(
    engine: Engine, make_config: Callable[..., Config], tmp_path: Path
) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "broken.md").write_text("no front matter here", encoding="utf-8")
    message, draft = run(engine, make_config(kb={"dir": str(kb)}), OUTAGE.read_bytes())
    assert message.state == MessageState.DRAFTED
    assert draft is not None and draft.state == DraftState.NEEDS_TRIAGE
    assert draft.body == ""
    assert "broken.md" in draft.evidence["kb_error"]
    assert "no KB article matched" in draft.rationale


def test_bounce_of_our_reply_is_suppressed_and_fails_the_delivery(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    config = make_config()
    first, _ = run(engine, config, (SCREENING / "customer_ordinary.eml").read_bytes())
    with session_scope(engine) as session:
        row = Outbox(
            ticket_id=first.ticket_id,
            message_id="<sg-bounced0001@example.com>",
            to_addrs=["gone@customer.example"],
            subject="Re: x",
            body="hello",
            released_by="Rita Rep",
            state=OutboxState.SENT,
        )
        session.add(row)
        session.flush()
        row_id = row.id
    bounce, draft = run(engine, config, (SCREENING / "dsn_failed.eml").read_bytes())
    assert draft is None
    assert bounce.state == MessageState.SUPPRESSED
    assert bounce.suppression_reason is not None
    assert bounce.suppression_reason.startswith("bounce: delivery failure")
    assert bounce.ticket_id == first.ticket_id and bounce.thread_signal == "bounce"
    with Session(engine) as session:
        stored = session.get(Outbox, row_id)
        assert stored is not None and stored.state == OutboxState.FAILED
        assert stored.last_error is not None and "User unknown" in stored.last_error


def test_draft_goes_to_reply_to_when_given(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    raw = (
        (SCREENING / "customer_ordinary.eml")
        .read_bytes()
        .replace(b"Subject:", b"Reply-To: Ops Team <ops@customer.example>\nSubject:", 1)
    )
    _, draft = run(engine, make_config(), raw)
    assert draft is not None and draft.to_addr == "ops@customer.example"
    _, plain = run(
        engine, make_config(), (SCREENING / "customer_mentions_automatic_reply.eml").read_bytes()
    )
    assert plain is not None and plain.to_addr == "grace@customer.example"


def test_old_loop_counters_are_pruned(engine: Engine, make_config: Callable[..., Config]) -> None:
    with session_scope(engine) as session:
        session.add(
            SenderRate(key="sender:old@x", window_start=utcnow() - timedelta(days=10), count=9)
        )
    run(engine, make_config(), (SCREENING / "customer_ordinary.eml").read_bytes())
    with Session(engine) as session:
        keys = {r.key for r in session.exec(select(SenderRate)).all()}
    assert "sender:old@x" not in keys
    assert "sender:heidi@customer.example" in keys


def test_requeued_suppressed_mail_is_drafted_as_the_rep_decided(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    config = make_config()
    ooo, draft = run(engine, config, (SCREENING / "vacation_x_autoreply.eml").read_bytes())
    assert ooo.state == MessageState.SUPPRESSED and draft is None
    assert requeue(engine, [int(ooo.id or 0)], actor="Rita Rep") == 1
    run_until_idle([AnalysisRunner(config, engine)])
    with Session(engine) as session:
        again = session.get(Message, ooo.id)
        assert again is not None and again.state == MessageState.DRAFTED
        assert again.suppression_reason is None
        assert session.exec(select(Draft).where(Draft.message_pk == ooo.id)).one()
        overridden = session.exec(
            select(AuditLog).where(AuditLog.action == "message.screening_overridden")
        ).one()
        assert "X-Autoreply" in overridden.details["previous"]
