"""Ticket leases: who is working on a ticket, so two reps do not answer it at once.

Apart from edits because both edits and release check a lease before they write.
Taking a lease and keeping one are different acts: `acquire_lease` takes a free ticket
when a rep opens it, while `renew_lease` only extends a lease its holder still has. A
rep whose ticket was taken over is told so (`Lease.taken_over_by`) and her app cannot
quietly take it back; only an explicit `take_over` can.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from storage.audit import audit
from storage.db import session_scope
from storage.models import AuditLog, Ticket, utcnow
from storage.review.types import LeaseHeld, ReviewError

# ---------------------------------------------------------------- leases


@dataclass(frozen=True, slots=True)
class Lease:
    ticket_id: int
    holder: str
    expires_at: datetime
    mine: bool
    # Set when the asking rep held this lease and another rep took it over.
    taken_over_by: str | None = None


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


def renew_lease(
    *, engine: Engine, ticket_id: int, actor: str, minutes: int = 15, now: datetime | None = None
) -> Lease:
    """Extend `actor`'s own lease; never take one that is no longer hers.

    A compare-and-set on the holder: if another rep took the ticket over (or took it
    after it lapsed, or took it over and already left), nothing is written and the lease
    returned has `mine` False and says who took it.
    """
    now = now or utcnow()
    expires = now + timedelta(minutes=minutes)
    with session_scope(engine) as session:
        result = session.execute(
            update(Ticket)
            .where(col(Ticket.id) == ticket_id, col(Ticket.lease_holder) == actor)
            .values(lease_expires_at=expires)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            return Lease(ticket_id, actor, expires, mine=True)
        return lease_state(session=session, ticket_id=ticket_id, actor=actor, now=now)


def lease_state(
    *, session: Session, ticket_id: int, actor: str, now: datetime | None = None
) -> Lease:
    """The lease as `actor` sees it, without changing it.

    `mine` is True only while `actor` is the recorded holder; otherwise `taken_over_by`
    names the live holder, or else the rep who last took the ticket over from `actor`.
    """
    now = now or utcnow()
    ticket = _ticket(session, ticket_id)
    expires = ticket.lease_expires_at or now
    if ticket.lease_holder == actor:
        return Lease(ticket_id, actor, expires, mine=True)
    holder = _live_holder(ticket, now)
    taker = holder or _last_taker(session, ticket_id, actor)
    return Lease(ticket_id, taker or "", expires, mine=False, taken_over_by=taker)


def _last_taker(session: Session, ticket_id: int, previous: str) -> str | None:
    """Who last took the ticket over, if it was taken from `previous`."""
    row = session.exec(
        select(AuditLog)
        .where(
            col(AuditLog.action) == "ticket.taken_over",
            col(AuditLog.entity_type) == "ticket",
            col(AuditLog.entity_id) == ticket_id,
        )
        .order_by(col(AuditLog.id).desc())
        .limit(1)
    ).first()
    if row is not None and (row.details or {}).get("previous_holder") == previous:
        return row.actor
    return None


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
