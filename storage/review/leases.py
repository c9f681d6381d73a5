"""Ticket leases: who is working on a ticket, so two reps do not answer it at once.

Apart from edits because both edits and release check a lease before they write.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from storage.audit import audit
from storage.db import session_scope
from storage.models import Ticket, utcnow
from storage.review.types import LeaseHeld, ReviewError

# ---------------------------------------------------------------- leases


@dataclass(frozen=True, slots=True)
class Lease:
    ticket_id: int
    holder: str
    expires_at: datetime
    mine: bool


def _live_holder(ticket: Ticket, now: datetime) -> str | None:
    if ticket.lease_holder and ticket.lease_expires_at and ticket.lease_expires_at > now:
        return ticket.lease_holder
    return None


def acquire_lease(
    *, engine: Engine, ticket_id: int, actor: str, minutes: int = 15, now: datetime | None = None
) -> Lease:
    """Mark the ticket as worked on by `actor`, unless someone else holds it.

    Returns the lease in force: `mine` is False when another rep holds it.
    """
    now = now or utcnow()
    with session_scope(engine) as session:
        ticket = _ticket(session, ticket_id)
        holder = _live_holder(ticket, now)
        if holder and holder != actor:
            assert ticket.lease_expires_at is not None
            return Lease(ticket_id, holder, ticket.lease_expires_at, mine=False)
        ticket.lease_holder = actor
        ticket.lease_expires_at = now + timedelta(minutes=minutes)
        session.add(ticket)
        return Lease(ticket_id, actor, ticket.lease_expires_at, mine=True)


def release_lease(*, engine: Engine, ticket_id: int, actor: str) -> bool:
    """Give the ticket back; only the holder's own lease is cleared."""
    with session_scope(engine) as session:
        result = session.execute(
            update(Ticket)
            .where(col(Ticket.id) == ticket_id, col(Ticket.lease_holder) == actor)
            .values(lease_holder=None, lease_expires_at=None)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def take_over(
    *, engine: Engine, ticket_id: int, actor: str, minutes: int = 15, now: datetime | None = None
) -> Lease:
    """Explicitly take a ticket another rep holds; audited with the previous holder."""
    now = now or utcnow()
    with session_scope(engine) as session:
        ticket = _ticket(session, ticket_id)
        previous = _live_holder(ticket, now)
        ticket.lease_holder = actor
        ticket.lease_expires_at = now + timedelta(minutes=minutes)
        session.add(ticket)
        audit(
            session,
            actor=actor,
            action="ticket.taken_over",
            entity_type="ticket",
            entity_id=ticket_id,
            details={"previous_holder": previous},
        )
        return Lease(ticket_id, actor, ticket.lease_expires_at, mine=True)


def _ticket(session: Session, ticket_id: int) -> Ticket:
    ticket = session.get(Ticket, ticket_id, populate_existing=True)
    if ticket is None:
        raise ReviewError(f"ticket {ticket_id} does not exist")
    return ticket


def _check_lease(session: Session, ticket_id: int, actor: str, now: datetime) -> None:
    ticket = _ticket(session, ticket_id)
    holder = _live_holder(ticket, now)
    if holder and holder != actor:
        raise LeaseHeld(ticket_id=ticket_id, holder=holder, expires_at=ticket.lease_expires_at)
