"""The analysis runner: a named pipeline of small steps for each received message.

parse → screen → thread → analyse → draft. Each step is a small function with a name;
the runner claims a message, runs the steps, and either finishes it (drafted or
suppressed) or shunts it with the reason. Nothing here sends mail: drafts wait for a
human in the review queue.
"""

from __future__ import annotations

import logging
import os
import socket
import traceback
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from gateway.config import Config
from gateway.parse import ParseError, parse_message, summary
from nlp.types import Analysis, ParsedMessage
from storage.db import session_scope
from storage.models import (
    AnalysisRecord,
    Draft,
    DraftState,
    Message,
    MessageState,
    RawMessage,
    Ticket,
    utcnow,
)
from storage.queue import claim_messages, set_state, shunt

log = logging.getLogger(__name__)


@dataclass
class Context:
    """What the steps share: config, engine, and lazily loaded models."""

    config: Config
    engine: Engine
    _analyzer: Any = field(default=None, repr=False)

    def analyse(self, parsed: ParsedMessage) -> Analysis | None:
        try:
            from nlp.analyse import Analyzer, AnalyzerSettings
        except ImportError:
            return None
        if self._analyzer is None:
            nlp_cfg = self.config.nlp
            model_dir = str(self.config.resolve_path(nlp_cfg.model_dir)) if nlp_cfg.model_dir else ""
            self._analyzer = Analyzer(
                AnalyzerSettings(
                    model_dir=model_dir,
                    abstain_threshold=nlp_cfg.abstain_threshold,
                    products=tuple(nlp_cfg.products),
                    account_id_patterns=tuple(nlp_cfg.account_id_patterns),
                    max_log_bytes=nlp_cfg.max_log_bytes,
                    max_compression_ratio=nlp_cfg.max_compression_ratio,
                )
            )
        result: Analysis = self._analyzer.analyse(parsed)
        return result


class AnalysisRunner:
    """Claims `received` messages and runs the pipeline on each."""

    def __init__(self, config: Config, engine: Engine, *, worker: str | None = None) -> None:
        self.name = "analysis"
        self.ctx = Context(config=config, engine=engine)
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}:analysis"

    def run_once(self) -> int:
        ids = claim_messages(
            self.ctx.engine, worker=self.worker, limit=self.ctx.config.runner.batch_size
        )
        for message_pk in ids:
            process_message(self.ctx, message_pk, actor=self.worker)
        return len(ids)


def process_message(ctx: Context, message_pk: int, *, actor: str) -> None:
    """Run the pipeline on one claimed message; shunt it on any failure."""
    try:
        with session_scope(ctx.engine) as session:
            message = session.get(Message, message_pk)
            if message is None or message.state != MessageState.ANALYSING:
                return
            parsed = step_parse(ctx, session, message)
            analysis = step_analyse(ctx, parsed)
            ticket = step_thread(ctx, session, message, parsed)
            step_store_analysis(session, message, analysis)
            step_draft(ctx, session, message, ticket, parsed, analysis)
            set_state(session, message, MessageState.DRAFTED, actor=actor)
    except ParseError as exc:
        shunt(ctx.engine, message_pk, actor=actor, reason=f"parse: {exc}")
    except Exception as exc:
        log.exception("pipeline failed for message %s", message_pk)
        shunt(
            ctx.engine,
            message_pk,
            actor=actor,
            reason=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}",
        )


def step_parse(ctx: Context, session: Session, message: Message) -> ParsedMessage:
    raw = session.get(RawMessage, message.sha256)
    if raw is None:
        raise ParseError(f"raw bytes {message.sha256} missing")
    parsed = parse_message(raw.data, max_attachment_bytes=ctx.config.parse.max_attachment_bytes)
    message.parsed = summary(parsed)
    message.from_addr = message.from_addr or parsed.from_addr or None
    message.subject = message.subject or parsed.subject or None
    session.add(message)
    return parsed


def step_analyse(ctx: Context, parsed: ParsedMessage) -> Analysis | None:
    return ctx.analyse(parsed)


def step_thread(ctx: Context, session: Session, message: Message, parsed: ParsedMessage) -> Ticket:
    ticket = Ticket(
        subject=parsed.subject,
        customer_addr=parsed.from_addr or message.envelope_from,
        customer_name=parsed.from_name or None,
        mailbox=message.mailbox,
    )
    session.add(ticket)
    session.flush()
    message.ticket_id = ticket.id
    message.thread_signal = "new"
    return ticket


def step_store_analysis(session: Session, message: Message, analysis: Analysis | None) -> None:
    if analysis is None:
        return
    data = analysis.to_json()
    session.add(
        AnalysisRecord(
            message_pk=int(message.id or 0),
            model_version=analysis.model_version,
            intent=analysis.intent,
            confidence=analysis.confidence,
            abstained=analysis.abstained,
            scores=analysis.scores,
            entities=data["entities"],
            log_findings=data["log_findings"],
            reply_text=analysis.reply_text,
            notes=list(analysis.notes),
        )
    )


def step_draft(
    ctx: Context,
    session: Session,
    message: Message,
    ticket: Ticket,
    parsed: ParsedMessage,
    analysis: Analysis | None,
) -> Draft:
    intent = analysis.intent if analysis else None
    confidence = analysis.confidence if analysis else None
    if analysis is not None:
        ticket.intent = intent
        ticket.confidence = confidence
    ticket.updated_at = utcnow()
    session.add(ticket)
    subject = parsed.subject or "(no subject)"
    draft = Draft(
        ticket_id=int(ticket.id or 0),
        message_pk=int(message.id or 0),
        state=DraftState.NEEDS_TRIAGE,
        to_addr=parsed.from_addr or message.envelope_from or "",
        subject=f"Re: {subject} [#{ticket.id}]",
        body="",
        intent=intent,
        confidence=confidence,
        model_version=analysis.model_version if analysis else None,
        rationale="no analysis available" if analysis is None else f"{intent} {confidence:.2f}",
    )
    session.add(draft)
    return draft
