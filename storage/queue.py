"""Queue transitions: claim, finish, shunt, and recovery of stale claims.

On SQLite a claim is a compare-and-set update (`UPDATE … WHERE id=? AND state=?`): no
row locks, and BEGIN IMMEDIATE serialises claimers anyway. On PostgreSQL, where several
hosts claim at once, it is `WITH due AS (SELECT … FOR UPDATE SKIP LOCKED) UPDATE …`: each
claimer takes rows no other holds, in one round trip, instead of all reading the same
oldest rows and queueing behind each other's locks (bench/pg_claims.py). A claim never
finished (the process died) is handed back after `stale_after`; a row that keeps dying
is shunted after `max_attempts`, so one poisonous message cannot loop forever. After a
temporary failure (a locked or full database) `retry_later` hands it back to wait out a
growing backoff; it is shunted only once it has used up `max_attempts`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from storage.audit import audit
from storage.db import session_scope
from storage.models import Message, MessageState, Outbox, OutboxState, utcnow
from storage.workers import mark_uncertain

# Allowed transitions of Message.state; anything else is a programming error.
TRANSITIONS: dict[str, set[str]] = {
    MessageState.RECEIVED: {MessageState.ANALYSING, MessageState.SHUNTED},
    MessageState.ANALYSING: {
        MessageState.DRAFTED,
        MessageState.SUPPRESSED,
        MessageState.SHUNTED,
        MessageState.RECEIVED,
    },
    MessageState.DRAFTED: {MessageState.APPROVED, MessageState.SUPPRESSED, MessageState.RECEIVED},
    MessageState.SUPPRESSED: {MessageState.RECEIVED},
    MessageState.APPROVED: {MessageState.SENT, MessageState.DRAFTED},
    MessageState.SENT: set(),
    MessageState.SHUNTED: {MessageState.RECEIVED},
}


class InvalidTransition(ValueError):
    pass


def check_transition(old: str, new: str) -> None:
    if new not in TRANSITIONS.get(old, set()):
        raise InvalidTransition(f"message cannot go from {old!r} to {new!r}")


def claim_messages(
    engine: Engine, *, worker: str, limit: int = 10, from_state: str = MessageState.RECEIVED
) -> list[int]:
    """Claim up to `limit` messages in `from_state` for `worker`; return their ids, oldest first.

    Unclaimed rows never carry a `claimed_at`, except those `retry_later` handed
    back: there it is the time before which they are not to be tried again.
    """
    now = utcnow()
    due = (
        select(Message.id)
        .where(
            Message.state == from_state,
            or_(col(Message.claimed_at).is_(None), col(Message.claimed_at) <= now),
        )
        .order_by(col(Message.id))
        .limit(limit)
    )
    attempts = Message.attempts + 1  # type: ignore[operator]
    claim = update(Message).values(
        state=MessageState.ANALYSING, claimed_by=worker, claimed_at=now, attempts=attempts
    )
    with session_scope(engine) as session:
        if engine.dialect.name == "postgresql":
            # MATERIALIZED: as `id IN (subquery)` the planner may rerun it per joined row,
            # locking a fresh batch each time. Locked rows were rechecked against WHERE.
            locked = due.with_for_update(skip_locked=True).cte("due").prefix_with("MATERIALIZED")
            taken = session.execute(
                claim.where(col(Message.id) == locked.c.id).returning(col(Message.id))
            ).scalars()
            return sorted(int(i) for i in taken)
        claimed: list[int] = []
        for msg_id in session.exec(due).all():
            result = session.execute(
                claim.where(col(Message.id) == msg_id, col(Message.state) == from_state)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(int(msg_id))  # type: ignore[arg-type]
        return claimed


def set_state(
    session: Session,
    message: Message,
    new_state: str,
    *,
    actor: str,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Move `message` to `new_state` (validated) and write the audit row."""
    old = message.state
    check_transition(old, new_state)
    message.state = new_state
    if new_state in (MessageState.DRAFTED, MessageState.SUPPRESSED, MessageState.SHUNTED):
        message.claimed_by = None
        message.claimed_at = None
    if new_state == MessageState.SHUNTED:
        message.error = reason
    if new_state == MessageState.SUPPRESSED:
        message.suppression_reason = reason
    session.add(message)
    audit(
        session,
        actor=actor,
        action=f"message.{new_state}",
        entity_type="message",
        entity_id=message.id,
        details={"from": old, "reason": reason, **(details or {})},
    )


def shunt(engine: Engine, message_id: int, *, actor: str, reason: str) -> None:
    """Keep the message, visible and replayable, with the reason it failed."""
    with session_scope(engine) as session:
        message = session.get(Message, message_id)
        if message is None:
            return
        if message.state != MessageState.SHUNTED:
            message.state = MessageState.SHUNTED
            message.error = reason[:10_000]
            message.claimed_by = None
            message.claimed_at = None
            session.add(message)
            audit(
                session,
                actor=actor,
                action="message.shunted",
                entity_type="message",
                entity_id=message_id,
                details={"reason": reason[:2000]},
            )


RETRY_BACKOFF_SECONDS = 30.0
RETRY_BACKOFF_MAX_SECONDS = 1800.0


def retry_backoff(attempts: int) -> timedelta:
    """30 s after the first failed attempt, doubling, at most half an hour."""
    seconds = RETRY_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, RETRY_BACKOFF_MAX_SECONDS))


def retry_later(
    engine: Engine, message_id: int, *, actor: str, reason: str, max_attempts: int
) -> str:
    """After a temporary failure: back to `received` until its backoff has passed, or
    shunted once its claims have used up `max_attempts`. Returns the new state."""
    with session_scope(engine) as session:
        message = session.get(Message, message_id)
        if message is None:
            return ""
        if message.state != MessageState.ANALYSING or message.claimed_by != actor:
            return message.state
        details = {"reason": reason[:2000], "attempts": message.attempts}
        if message.attempts >= max_attempts:
            message.state = MessageState.SHUNTED
            message.error = f"gave up after {message.attempts} attempts: {reason}"[:10_000]
            message.claimed_at = None
            action = "message.shunted"
        else:
            message.state = MessageState.RECEIVED
            message.claimed_at = utcnow() + retry_backoff(message.attempts)
            details["retry_after"] = message.claimed_at.isoformat()
            action = "message.retry_later"
        message.claimed_by = None
        session.add(message)
        audit(
            session,
            actor=actor,
            action=action,
            entity_type="message",
            entity_id=message_id,
            details=details,
        )
        return message.state


def requeue(engine: Engine, message_ids: list[int], *, actor: str) -> int:
    """Put shunted (or suppressed) messages back to `received` for another try."""
    count = 0
    with session_scope(engine) as session:
        for msg in session.exec(select(Message).where(col(Message.id).in_(message_ids))).all():
            if msg.state in (MessageState.SHUNTED, MessageState.SUPPRESSED):
                set_state(session, msg, MessageState.RECEIVED, actor=actor, reason="requeued")
                msg.attempts = 0
                msg.error = None
                count += 1
    return count


def recover_stale(
    engine: Engine,
    *,
    stale_after: timedelta,
    max_attempts: int,
    now: datetime | None = None,
) -> tuple[int, int]:
    """Hand back claims older than `stale_after`; shunt rows past `max_attempts`.

    Returns (requeued, shunted).
    """
    now = now or utcnow()
    cutoff = now - stale_after
    requeued = shunted = 0
    with session_scope(engine) as session:
        stale = session.exec(
            select(Message).where(
                Message.state == MessageState.ANALYSING, col(Message.claimed_at) < cutoff
            )
        ).all()
        for msg in stale:
            if msg.attempts >= max_attempts:
                msg.state = MessageState.SHUNTED
                msg.error = (
                    f"gave up after {msg.attempts} attempts (claim by {msg.claimed_by} went stale)"
                )
                shunted += 1
                action = "message.shunted"
            else:
                msg.state = MessageState.RECEIVED
                requeued += 1
                action = "message.recovered"
            audit(
                session,
                actor="system",
                action=action,
                entity_type="message",
                entity_id=msg.id,
                details={"claimed_by": msg.claimed_by, "attempts": msg.attempts},
            )
            msg.claimed_by = None
            msg.claimed_at = None
            session.add(msg)
        mark_stale_sends_uncertain(session, cutoff=cutoff)
    return requeued, shunted


def mark_stale_sends_uncertain(session: Session, *, cutoff: datetime) -> int:
    """Outbox rows still `sending` since before `cutoff` become `uncertain`.

    Their sender died mid-send, so we cannot know whether the relay accepted the
    message. They are never resent blindly; a human decides (see gateway.outbound.sender).
    """
    rows = session.exec(
        select(Outbox).where(Outbox.state == OutboxState.SENDING, col(Outbox.claimed_at) < cutoff)
    ).all()
    return mark_uncertain(session, rows, actor="system", why="stopped")


def release_claims(engine: Engine, *, worker_prefix: str) -> int:
    """Hand back every message claimed by workers whose name starts with `worker_prefix`
    (this process, on a clean stop), without counting it as a failed attempt."""
    with session_scope(engine) as session:
        rows = session.exec(
            select(Message).where(
                Message.state == MessageState.ANALYSING,
                col(Message.claimed_by).startswith(worker_prefix),
            )
        ).all()
        for msg in rows:
            msg.state = MessageState.RECEIVED
            msg.attempts = max(msg.attempts - 1, 0)
            audit(
                session,
                actor="system",
                action="message.handed_back",
                entity_type="message",
                entity_id=msg.id,
                details={"claimed_by": msg.claimed_by},
            )
            msg.claimed_by = None
            msg.claimed_at = None
            session.add(msg)
        return len(rows)
