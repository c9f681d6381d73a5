"""The processes `serve` supervises, as `supportgate status` sees them, and what a dead
one leaves behind.

The supervisor is the only writer of `WorkerProcess` (storage/worker_table.py): it
updates a slot's row when a process starts, exits or is restarted, so status shows the
pid, the restarts and the last exit without asking the supervisor anything.

`reclaim_dead` is recovery for one process known to be dead (the supervisor saw it
exit): its claims need not wait `stale_after_seconds` to be handed back. Unlike a clean
stop's `release_claims`, the claim counts as an attempt, so a message that kills its
worker every time is shunted after `max_attempts` instead of killing workers forever;
and an outbox row it was sending becomes `uncertain`, never sent again by a machine.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from storage.audit import audit
from storage.db import session_scope
from storage.models import Message, MessageState, Outbox, OutboxState, utcnow
from storage.worker_table import WorkerProcess

__all__ = ["WorkerProcess", "forget_host", "list_workers", "reclaim_dead", "record_worker"]


def forget_host(engine: Engine, *, host: str) -> None:
    """A supervisor starting on `host` replaces whatever an earlier one recorded there."""
    with session_scope(engine) as session:
        session.execute(delete(WorkerProcess).where(col(WorkerProcess.host) == host))


def record_worker(engine: Engine, row: WorkerProcess) -> None:
    """Insert or replace the row of one slot."""
    row.updated_at = utcnow()
    with session_scope(engine) as session:
        session.merge(row)


def list_workers(engine: Engine) -> list[WorkerProcess]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(WorkerProcess).order_by(col(WorkerProcess.host), col(WorkerProcess.name))
            ).all()
        )


def reclaim_dead(engine: Engine, *, worker_prefix: str, max_attempts: int) -> tuple[int, int, int]:
    """Hand back what the dead process named by `worker_prefix` ("host:pid:") held.

    Returns (requeued, shunted, uncertain).
    """
    requeued = shunted = uncertain = 0
    with session_scope(engine) as session:
        held = session.exec(
            select(Message).where(
                Message.state == MessageState.ANALYSING,
                col(Message.claimed_by).startswith(worker_prefix),
            )
        ).all()
        for msg in held:
            details = {"claimed_by": msg.claimed_by, "attempts": msg.attempts}
            if msg.attempts >= max_attempts:
                msg.state = MessageState.SHUNTED
                msg.error = f"gave up after {msg.attempts} attempts ({msg.claimed_by} died)"
                action, shunted = "message.shunted", shunted + 1
            else:
                msg.state = MessageState.RECEIVED
                action, requeued = "message.recovered", requeued + 1
            msg.claimed_by = None
            msg.claimed_at = None
            session.add(msg)
            audit(
                session,
                actor="supervisor",
                action=action,
                entity_type="message",
                entity_id=msg.id,
                details=details,
            )
        sending = session.exec(
            select(Outbox).where(
                Outbox.state == OutboxState.SENDING,
                col(Outbox.claimed_by).startswith(worker_prefix),
            )
        ).all()
        uncertain += mark_uncertain(session, sending, actor="supervisor", why="died")
    return requeued, shunted, uncertain


def mark_uncertain(session: Session, rows: Sequence[Outbox], *, actor: str, why: str) -> int:
    """`rows`, caught `sending` by a sender that `why` ("died", "stopped"), become
    `uncertain`: never resent blindly, audited."""
    for row in rows:
        row.state = OutboxState.UNCERTAIN
        row.last_error = f"sender {row.claimed_by} {why} during delivery; not resent"
        session.add(row)
        audit(
            session,
            actor=actor,
            action="outbox.uncertain",
            entity_type="outbox",
            entity_id=row.id,
            details={"claimed_by": row.claimed_by},
        )
    return len(rows)
