"""Seeding a queue, and adding single tickets to one.

`seed` writes the scenario tickets in batches, then what makes a queue realistic around
them: customer follow-ups that made drafts stale, shunted mail that could not be parsed
and a failed send. `add_ticket` adds one hand-written ticket, for tests that need a
particular sender, body or state.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from storage.db import session_scope
from storage.models import (
    Draft,
    DraftState,
    Message,
    MessageState,
    Outbox,
    OutboxState,
    RawMessage,
    Ticket,
)
from storage.seed.batch import write_batch
from storage.seed.scenarios import FIXED_NOW, MODEL_VERSION, raw_mail, scenario

__all__ = ["SeedResult", "add_ticket", "seed"]


@dataclass(frozen=True, slots=True)
class SeedResult:
    draft_ids: list[int]
    ticket_ids: list[int]
    shunted_message_ids: list[int]
    failed_outbox_ids: list[int]


def seed(
    engine: Engine,
    *,
    count: int = 40,
    now: datetime = FIXED_NOW,
    rng_seed: int = 7,
    stale_every: int = 9,
    unfilled_every: int = 11,
    shunted: int = 2,
    failed: int = 1,
    batch: int = 5000,
) -> SeedResult:
    """Write `count` tickets with drafts (+ shunted mail and failed sends); return ids."""
    rng = random.Random(rng_seed)
    draft_ids: list[int] = []
    ticket_ids: list[int] = []
    for start in range(0, count, batch):
        rows = [scenario(i, rng, now) for i in range(start, min(count, start + batch))]
        t_ids, d_ids = write_batch(engine, rows, start, stale_every, unfilled_every)
        ticket_ids += t_ids
        draft_ids += d_ids
    if stale_every:
        _write_followups(
            engine, [t for n, t in enumerate(ticket_ids) if n % stale_every == stale_every - 1], now
        )
    shunted_ids = _write_shunted(engine, shunted, now)
    failed_ids = _write_failed(engine, failed, now)
    return SeedResult(draft_ids, ticket_ids, shunted_ids, failed_ids)


def _write_followups(engine: Engine, ticket_ids: list[int], now: datetime) -> None:
    """A second customer mail on each stale ticket: the reason its draft went stale."""
    with session_scope(engine) as session:
        for tid in ticket_ids:
            ticket = session.get(Ticket, tid)
            if ticket is None or not ticket.customer_addr:
                continue
            body = "Any news? It is still failing for us and the team is blocked.\n"
            at = min(now, ticket.created_at + timedelta(hours=1))
            raw = raw_mail(
                f"followup-{tid}@{ticket.customer_addr.split('@')[-1]}",
                ticket.customer_addr,
                ticket.customer_name or "",
                f"Re: {ticket.subject}",
                body,
                at,
            )
            sha = hashlib.sha256(raw).hexdigest()
            if session.get(RawMessage, sha) is None:
                session.add(RawMessage(sha256=sha, size=len(raw), data=raw))
                session.flush()
            session.add(
                Message(
                    dedupe_key=f"sha:{sha}",
                    message_id=f"followup-{tid}@seed",
                    sha256=sha,
                    size=len(raw),
                    source="seed",
                    mailbox=ticket.mailbox,
                    from_addr=ticket.customer_addr,
                    from_name=ticket.customer_name,
                    subject=f"Re: {ticket.subject}",
                    received_at=at,
                    state=MessageState.DRAFTED,
                    ticket_id=tid,
                    thread_signal="subject-token",
                    parsed={"text": body, "attachments": [], "defects": []},
                )
            )


def _write_shunted(engine: Engine, count: int, now: datetime) -> list[int]:
    ids = []
    with session_scope(engine) as session:
        for i in range(count):
            raw = f"Subject: garbled {i}\r\n\r\n\x00\x00binary".encode()
            sha = hashlib.sha256(raw).hexdigest()
            if session.get(RawMessage, sha) is None:
                session.add(RawMessage(sha256=sha, size=len(raw), data=raw))
                session.flush()
            msg = Message(
                dedupe_key=f"sha:{sha}",
                sha256=sha,
                size=len(raw),
                source="seed",
                from_addr=f"noreply{i}@mailer.example.net",
                subject=f"garbled {i}",
                received_at=now - timedelta(hours=2 + i),
                state=MessageState.SHUNTED,
                error="ParseError: no readable body (charset x-unknown)",
                attempts=3,
            )
            session.add(msg)
            session.flush()
            ids.append(int(msg.id or 0))
    return ids


def _write_failed(engine: Engine, count: int, now: datetime) -> list[int]:
    ids = []
    with session_scope(engine) as session:
        for i in range(count):
            row = Outbox(
                message_id=f"<sg-failed{i}@example.com>",
                to_addrs=[f"gone{i}@defunct.example"],
                subject=f"Re: old request {i}",
                body="Hello,\n\nfollowing up.\n",
                released_by="alice",
                released_at=now - timedelta(hours=5 + i),
                state=OutboxState.FAILED,
                attempts=8,
                last_error="550 5.1.1 mailbox unavailable",
            )
            session.add(row)
            session.flush()
            ids.append(int(row.id or 0))
    return ids


def add_ticket(
    engine: Engine,
    *,
    sender: str,
    subject: str,
    body: str,
    received_at: datetime,
    name: str = "",
    intent: str = "bug_report",
    confidence: float = 0.8,
    state: str = DraftState.DRAFTED,
    reply: str = "Hello,\n\nthanks for writing; we are looking into it.\n\nBest regards",
    entities: list[dict[str, Any]] | None = None,
    mailbox: str = "support",
) -> tuple[int, int]:
    """Add one ticket with its customer message and a draft; return (ticket id, draft id)."""
    raw = raw_mail(
        f"added-{received_at:%Y%m%d%H%M%S%f}@{sender.split('@')[-1]}",
        sender,
        name,
        subject,
        body,
        received_at,
    )
    sha = hashlib.sha256(raw).hexdigest()
    with session_scope(engine) as session:
        if session.get(RawMessage, sha) is None:
            session.add(RawMessage(sha256=sha, size=len(raw), data=raw))
        ticket = Ticket(
            subject=subject,
            customer_addr=sender,
            customer_name=name,
            mailbox=mailbox,
            created_at=received_at,
            updated_at=received_at,
            intent=intent,
            confidence=confidence,
        )
        session.add(ticket)
        session.flush()
        message = Message(
            dedupe_key=f"sha:{sha}",
            message_id=None,
            sha256=sha,
            size=len(raw),
            source="seed",
            mailbox=mailbox,
            from_addr=sender,
            from_name=name,
            subject=subject,
            received_at=received_at,
            state=MessageState.DRAFTED,
            ticket_id=ticket.id,
            parsed={"text": body, "attachments": [], "defects": []},
        )
        session.add(message)
        session.flush()
        found = entities or []
        draft = Draft(
            ticket_id=int(ticket.id or 0),
            message_pk=int(message.id or 0),
            state=state,
            to_addr=sender,
            subject=f"Re: {subject} [#{ticket.id}]",
            body=reply,
            intent=intent,
            confidence=confidence,
            model_version=MODEL_VERSION,
            rationale=f"intent {intent} at {confidence:.2f}",
            evidence={"entities": found, "log_findings": []},
            created_at=received_at,
            updated_at=received_at,
        )
        session.add(draft)
        session.flush()
        return int(ticket.id or 0), int(draft.id or 0)
