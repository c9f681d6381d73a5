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
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from gateway.config import Config
from gateway.conversation.clock import written_at
from gateway.conversation.context import Context
from gateway.conversation.desk import desk_from, on_customer_mail
from gateway.conversation.drafting import step_draft
from gateway.conversation.history import thread_context
from gateway.conversation.incidents import incident_keys
from gateway.conversation.model_pass import ModelJob, run_model_job
from gateway.conversation.screen import ScreenVerdict, link_bounce, prune_rates, screen
from gateway.conversation.thread import assign_ticket, find_ticket
from gateway.inbound.parse import ParseError, parse_message, summary
from nlp.types import Analysis, ParsedMessage
from storage.audit import audit
from storage.db import is_transient, session_scope
from storage.desk.lifecycle import solve_quiet
from storage.models import AnalysisRecord, Message, MessageState, RawMessage, utcnow
from storage.queue import claim_messages, retry_later, set_state, shunt

log = logging.getLogger(__name__)

NO_MODEL = "none"
KB_QUERY_CHARS = 5000
PRUNE_EVERY_SECONDS = 3600.0


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
        try:
            prepared = prepare(self.ctx, ids)
        except Exception as exc:
            if is_transient(exc):
                # The database's fault, not the messages': the whole batch waits its turn.
                for message_pk in ids:
                    hand_back(self.ctx, message_pk, actor=self.worker, exc=exc)
                return len(ids)
            # One message's fault must not hold back its neighbours: each on its own.
            log.warning("preparing the batch failed; one message at a time", exc_info=True)
            prepared = {}
        for message_pk in ids:
            process_message(
                self.ctx, message_pk, actor=self.worker, prepared=prepared.get(message_pk)
            )
        if ids:
            self._prune_rates()
        return len(ids)

    def _prune_rates(self) -> None:
        """Drop loop-guard counters from past days and solve pending tickets left quiet,
        at most once an hour per runner."""
        now = time.monotonic()
        if now - self._pruned_at < PRUNE_EVERY_SECONDS:
            return
        self._pruned_at = now
        with session_scope(self.ctx.engine) as session:
            prune_rates(session, now=utcnow())
        solve_quiet(self.ctx.engine, desk_from(self.ctx.config))


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
        jobs: list[ModelJob] = []
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
            ticket, _signal = assign_ticket(session, message, prep.parsed, actor=actor)
            step_store_analysis(session, message, prep.analysis)
            thread = thread_context(session, ticket, int(message.id or 0))
            draft = step_draft(
                ctx, session, message, ticket, prep.parsed, prep.analysis, thread, jobs
            )
            on_customer_mail(session, ctx.config, ticket, message, prep.analysis, draft)
            set_state(session, message, MessageState.DRAFTED, actor=actor)
        for job in jobs:  # the model's network call, with no write lock held
            run_model_job(ctx, job)
    except ParseError as exc:
        shunt(ctx.engine, message_pk, actor=actor, reason=f"parse: {exc}")
    except Exception as exc:
        if is_transient(exc):
            hand_back(ctx, message_pk, actor=actor, exc=exc)
            return
        log.exception("pipeline failed for message %s", message_pk)
        shunt(
            ctx.engine,
            message_pk,
            actor=actor,
            reason=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}",
        )


def hand_back(ctx: Context, message_pk: int, *, actor: str, exc: Exception) -> None:
    """After a temporary database failure: try again later, and shunt only once
    [runner] max_attempts claims have all failed. The message is not at fault."""
    try:
        state = retry_later(
            ctx.engine,
            message_pk,
            actor=actor,
            reason=f"{type(exc).__name__}: {exc}"[:2000],
            max_attempts=ctx.config.runner.max_attempts,
        )
    except Exception:
        # Still claimed: stale-claim recovery hands it back (counting the attempt).
        state = "left claimed"
    log.warning("temporary failure for message %s (%s): %s", message_pk, exc, state)


def step_record_parse(session: Session, message: Message, parsed: ParsedMessage) -> None:
    message.parsed = summary(parsed)
    message.from_addr = message.from_addr or parsed.from_addr or None
    message.subject = message.subject or parsed.subject or None
    message.written_at, message.time_note = written_at(
        parsed, message.received_at, source=message.source
    )
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
            incident_keys=incident_keys(analysis, message.subject),
        )
    )
