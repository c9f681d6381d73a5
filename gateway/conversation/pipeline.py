"""The analysis runner: a named pipeline of small steps for each received message.

parse → screen → thread → analyse → suggest → draft. Each step is a small function with
a name; the runner claims a message, runs the steps in one transaction, and either
finishes it (drafted or suppressed) or shunts it with the reason. Screening comes
first so that machine mail (bounces, auto-replies, loops) never reaches drafting: it is
suppressed with its reason, joined to its ticket when one is known (without disturbing
the draft under review), and a bounce marks the delivery it reports as failed.

Nothing here sends mail: a draft waits for a human in the review queue, and only a
human release creates the outbox row the sender delivers.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import traceback
from dataclasses import dataclass, field
from email.utils import parseaddr
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from gateway import headers as h
from gateway.config import Config
from gateway.conversation.screen import ScreenVerdict, link_bounce, prune_rates, screen
from gateway.conversation.thread import assign_ticket, find_ticket
from gateway.inbound.parse import ParseError, parse_message, summary
from nlp.drafting.compose import compose, evidence
from nlp.drafting.kb import KbError, KnowledgeBase
from nlp.types import Analysis, DraftProposal, ParsedMessage, Suggestion
from storage.audit import audit
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

NO_MODEL = "none"
KB_QUERY_CHARS = 5000
PRUNE_EVERY_SECONDS = 3600.0


@dataclass
class Context:
    """What the steps share: config, engine, and lazily loaded models and KB."""

    config: Config
    engine: Engine
    _analyzer: Any = field(default=None, repr=False)
    _kb: KnowledgeBase | None = field(default=None, repr=False)
    kb_error: str = ""

    def analyse(self, parsed: ParsedMessage) -> Analysis | None:
        analyzer = self._get_analyzer()
        return None if analyzer is None else analyzer.analyse(parsed)  # type: ignore[no-any-return]

    def analyse_many(self, parsed: list[ParsedMessage]) -> list[Analysis] | None:
        """One model call for a whole batch (several times cheaper per message)."""
        analyzer = self._get_analyzer()
        return None if analyzer is None else list(analyzer.analyse_many(parsed))

    def _get_analyzer(self) -> Any:
        try:
            from nlp.analyse import Analyzer, AnalyzerSettings  # type: ignore[import-not-found]
        except ImportError:
            return None
        if self._analyzer is None:
            nlp_cfg = self.config.nlp
            model_dir = (
                str(self.config.resolve_path(nlp_cfg.model_dir)) if nlp_cfg.model_dir else ""
            )
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
        return self._analyzer

    @property
    def kb(self) -> KnowledgeBase:
        """The KB, loaded once. A broken KB leaves drafts without suggestions, not mail
        stuck: the error is logged and shown in every draft's evidence until fixed."""
        if self._kb is None:
            try:
                self._kb = KnowledgeBase.from_dir(self.config.resolve_path(self.config.kb.dir))
                self.kb_error = ""
            except KbError as exc:
                log.error("knowledge base not loaded: %s", exc)
                self.kb_error = str(exc)
                self._kb = KnowledgeBase(())
        return self._kb


def worker_prefix() -> str:
    """host:pid: — unique to this process, so its claims can be told apart."""
    return f"{socket.gethostname()}:{os.getpid()}:"


class AnalysisRunner:
    """Claims `received` messages and runs the pipeline on each."""

    def __init__(self, config: Config, engine: Engine, *, worker: str | None = None) -> None:
        self.name = "analysis"
        self.ctx = Context(config=config, engine=engine)
        self.worker = worker or f"{worker_prefix()}analysis"
        self._pruned_at = -PRUNE_EVERY_SECONDS

    def run_once(self) -> int:
        ids = claim_messages(
            self.ctx.engine, worker=self.worker, limit=self.ctx.config.runner.batch_size
        )
        prepared = prepare(self.ctx, ids)
        for message_pk in ids:
            process_message(
                self.ctx, message_pk, actor=self.worker, prepared=prepared.get(message_pk)
            )
        if ids:
            self._prune_rates()
        return len(ids)

    def _prune_rates(self) -> None:
        """Drop loop-guard counters from past days, at most once an hour per runner."""
        now = time.monotonic()
        if now - self._pruned_at < PRUNE_EVERY_SECONDS:
            return
        self._pruned_at = now
        with session_scope(self.ctx.engine) as session:
            prune_rates(session, now=utcnow())


@dataclass(frozen=True)
class Prepared:
    """The pure part of a message's pipeline, computed outside any write transaction."""

    raw: bytes
    parsed: ParsedMessage
    analysis: Analysis | None


def prepare(ctx: Context, message_pks: list[int]) -> dict[int, Prepared | Exception]:
    """Parse and analyse claimed messages before the write transaction opens.

    Parsing and the models take milliseconds per message; holding SQLite's write lock
    meanwhile would stall the SMTP front door and the IMAP pollers, so only the quick
    bookkeeping happens inside the transaction. The analysis is batched (one model call
    for the batch); a failure there falls back to one message at a time so one bad
    message cannot take its neighbours down with it.
    """
    if not message_pks:
        return {}
    with Session(ctx.engine) as session:
        raws = dict(
            session.exec(
                select(Message.id, RawMessage.data)
                .join(RawMessage, col(RawMessage.sha256) == col(Message.sha256))
                .where(col(Message.id).in_(message_pks))
            ).all()
        )
    out: dict[int, Prepared | Exception] = {}
    parsed: dict[int, ParsedMessage] = {}
    cap = ctx.config.parse.max_attachment_bytes
    for pk in message_pks:
        data = raws.get(pk)
        if data is None:
            out[pk] = ParseError(f"raw bytes of message {pk} missing")
            continue
        try:
            parsed[pk] = parse_message(data, max_attachment_bytes=cap)
        except Exception as exc:
            out[pk] = (
                exc if isinstance(exc, ParseError) else ParseError(f"{type(exc).__name__}: {exc}")
            )
    pks = list(parsed)
    try:
        analyses: list[Analysis | None] | None = list(
            ctx.analyse_many([parsed[pk] for pk in pks]) or []
        )
    except Exception:
        log.warning("batched analysis failed; analysing one message at a time", exc_info=True)
        analyses = None
    for i, pk in enumerate(pks):
        data = raws[pk]
        if analyses is not None:
            out[pk] = Prepared(data, parsed[pk], analyses[i] if i < len(analyses) else None)
            continue
        try:
            out[pk] = Prepared(data, parsed[pk], ctx.analyse(parsed[pk]))
        except Exception as exc:
            out[pk] = exc
    return out


def process_message(
    ctx: Context, message_pk: int, *, actor: str, prepared: Prepared | Exception | None = None
) -> None:
    """Run the pipeline on one claimed message; shunt it on any failure."""
    try:
        prep = prepared if prepared is not None else prepare(ctx, [message_pk])[message_pk]
        if isinstance(prep, Exception):
            raise prep
        with session_scope(ctx.engine) as session:
            message = session.get(Message, message_pk)
            if (
                message is None
                or message.state != MessageState.ANALYSING
                or message.claimed_by != actor
            ):
                return  # handed back (or recovered and claimed by another runner)
            step_record_parse(session, message, prep.parsed)
            verdict = step_screen(ctx, session, message, prep.parsed, prep.raw)
            if verdict is not None:
                step_suppress(session, message, prep.parsed, verdict, actor=actor)
                return
            ticket = step_thread(ctx, session, message, prep.parsed, actor=actor)
            step_store_analysis(session, message, prep.analysis)
            suggestions = step_suggest(ctx, prep.parsed, prep.analysis)
            step_draft(ctx, session, message, ticket, prep.parsed, prep.analysis, suggestions)
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


def step_record_parse(session: Session, message: Message, parsed: ParsedMessage) -> None:
    message.parsed = summary(parsed)
    message.from_addr = message.from_addr or parsed.from_addr or None
    message.subject = message.subject or parsed.subject or None
    session.add(message)


def step_screen(
    ctx: Context, session: Session, message: Message, parsed: ParsedMessage, raw: bytes
) -> ScreenVerdict | None:
    if message.suppression_reason:
        # Suppressed before and put back by a rep: a human overrode screening, and
        # screening again (the loop counters especially) would only undo that.
        audit(
            session,
            actor="pipeline",
            action="message.screening_overridden",
            entity_type="message",
            entity_id=message.id,
            details={"previous": message.suppression_reason[:500]},
        )
        message.suppression_reason = None
        return None
    return screen(
        parsed,
        session=session,
        config=ctx.config,
        now=utcnow(),
        raw=raw,
        received_at=message.received_at,
    )


def step_suppress(
    session: Session, message: Message, parsed: ParsedMessage, verdict: ScreenVerdict, *, actor: str
) -> None:
    """Keep machine mail visible on its ticket (if any) without staling the draft."""
    linked = link_bounce(session, message, verdict, actor=actor)
    if message.ticket_id is None:
        ticket_id, signal = find_ticket(session, parsed, exclude=message.id)
        if ticket_id is not None:
            message.ticket_id = ticket_id
            message.thread_signal = signal
    set_state(
        session,
        message,
        MessageState.SUPPRESSED,
        actor=actor,
        reason=verdict.text,
        details={"kind": verdict.kind, "outbox": linked},
    )


def step_thread(
    ctx: Context, session: Session, message: Message, parsed: ParsedMessage, *, actor: str
) -> Ticket:
    ticket, _signal = assign_ticket(session, message, parsed, actor=actor)
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


def no_analysis() -> Analysis:
    """Stands in when no model is available: abstain, so a human triages."""
    return Analysis(
        model_version=NO_MODEL,
        intent="needs_triage",
        confidence=0.0,
        scores={},
        abstained=True,
        entities=(),
        reply_text="",
        notes=("no analysis model available",),
    )


def step_suggest(
    ctx: Context, parsed: ParsedMessage, analysis: Analysis | None
) -> list[Suggestion]:
    """Rank KB articles on the subject, the new text and the log failure templates."""
    result = analysis or no_analysis()
    body = result.reply_text or parsed.text
    logs = " ".join(f.template for f in result.log_findings)
    query = f"{parsed.subject}\n{body[:KB_QUERY_CHARS]}\n{logs}"
    return ctx.kb.rank(
        query,
        intent=None if result.abstained else result.intent,
        confidence=result.confidence,
        entity_labels=[e.label for e in result.entities],
        limit=ctx.config.kb.max_suggestions,
    )


def step_draft(
    ctx: Context,
    session: Session,
    message: Message,
    ticket: Ticket,
    parsed: ParsedMessage,
    analysis: Analysis | None,
    suggestions: list[Suggestion],
) -> Draft:
    result = analysis or no_analysis()
    if analysis is not None:
        ticket.intent = analysis.intent
        ticket.confidence = analysis.confidence
    ticket.updated_at = utcnow()
    session.add(ticket)
    templates = {a.id: a.reply for s in suggestions if (a := ctx.kb.get(s.article_id))}
    proposal = compose(
        result,
        customer_name=parsed.from_name or ticket.customer_name or "",
        ticket_id=ticket.id,
        subject=parsed.subject or ticket.subject,
        suggestions=suggestions,
        templates=templates,
        min_confidence=ctx.config.nlp.abstain_threshold,
    )
    draft = Draft(
        ticket_id=int(ticket.id or 0),
        message_pk=int(message.id or 0),
        state=DraftState.NEEDS_TRIAGE if proposal.needs_triage else DraftState.DRAFTED,
        to_addr=reply_address(parsed) or message.envelope_from or "",
        subject=proposal.subject,
        body=proposal.body,
        intent=analysis.intent if analysis else None,
        confidence=analysis.confidence if analysis else None,
        model_version=analysis.model_version if analysis else None,
        article_id=proposal.article_id,
        suggestions=[_suggestion_json(s) for s in proposal.suggestions],
        unfilled=list(proposal.unfilled),
        rationale=proposal.rationale,
        evidence=_evidence(ctx, result, proposal),
    )
    session.add(draft)
    session.flush()
    audit(
        session,
        actor="pipeline",
        action=f"draft.{draft.state}",
        entity_type="draft",
        entity_id=draft.id,
        details={
            "ticket": ticket.id,
            "signal": message.thread_signal,
            "article": proposal.article_id,
            "unfilled": list(proposal.unfilled),
        },
        model_version=draft.model_version,
    )
    return draft


def reply_address(parsed: ParsedMessage) -> str:
    """Where the customer asked replies to go: Reply-To if it holds an address, else From."""
    _, addr = parseaddr(h.clean(parsed.header("Reply-To")))
    return addr.lower() if "@" in addr else parsed.from_addr


def _suggestion_json(s: Suggestion) -> dict[str, Any]:
    return {
        "article_id": s.article_id,
        "title": s.title,
        "score": s.score,
        "matched_terms": list(s.matched_terms),
    }


def _evidence(ctx: Context, analysis: Analysis, proposal: DraftProposal) -> dict[str, Any]:
    data = evidence(analysis, proposal)
    if ctx.kb_error:
        data["kb_error"] = ctx.kb_error
    return data
