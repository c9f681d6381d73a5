"""A ticket's status: open (waiting on us) → pending (waiting on the customer) → solved
→ closed, and the moves between them.

The machine moves a ticket only on facts: our reply was sent (pending), the customer
wrote (open again), nobody wrote for `solve_after` while pending (solved). Reps move
it too (solved, closed, spam, open). Every change writes an audit row with who and why
in the same transaction. Marking spam also records a label correction, so the mail
feeds the screening and intent training exports.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from storage.audit import audit
from storage.db import session_scope
from storage.desk.hours import Desk
from storage.models import LabelCorrection, Message, Ticket, utcnow
from storage.review.types import ReviewError

STATUSES = ("open", "pending", "solved", "closed", "spam", "merged")
# What a rep may set from each status (the machine's moves are below).
_BY_REP = {
    "open": {"pending", "solved", "closed", "spam"},
    "pending": {"open", "solved", "closed", "spam"},
    "solved": {"open", "closed"},
    "closed": set(),  # a customer writing starts a new ticket that links this one
    "spam": {"open"},
}


def set_status(session: Session, ticket: Ticket, status: str, *, actor: str, reason: str) -> bool:
    """Move `ticket` to `status` inside the caller's transaction; False if already there."""
    if status not in STATUSES:
        raise ReviewError(f"status must be one of {', '.join(STATUSES)}")
    old = ticket.status
    if old == status:
        return False
    ticket.status = status
    ticket.status_at = utcnow()
    if status in ("solved", "closed", "spam"):
        ticket.reply_due = None
        ticket.waiting_since = None
    session.add(ticket)
    audit(
        session,
        actor=actor,
        action="ticket.status",
        entity_type="ticket",
        entity_id=ticket.id,
        details={"from": old, "to": status, "reason": reason[:500]},
    )
    return True


def change_status(engine: Engine, ticket_id: int, status: str, *, actor: str) -> None:
    """A rep's move, checked against what reps may do from the current status."""
    if not actor.strip():
        raise ReviewError("changing a ticket's status needs a named rep")
    with session_scope(engine) as session:
        ticket = session.get(Ticket, ticket_id)
        if ticket is None:
            raise ReviewError(f"ticket {ticket_id} does not exist")
        if status != ticket.status and status not in _BY_REP.get(ticket.status, set()):
            raise ReviewError(f"a {ticket.status} ticket cannot be set to {status} by hand")
        set_status(session, ticket, status, actor=actor, reason="set by a rep")
        if status == "spam":
            _spam_labels(session, ticket, actor)


def _spam_labels(session: Session, ticket: Ticket, actor: str) -> None:
    messages = session.exec(
        select(Message).where(Message.ticket_id == ticket.id, Message.direction == "inbound")
    ).all()
    for message in messages:
        text = str((message.parsed or {}).get("text") or "")
        session.add(
            LabelCorrection(
                message_pk=int(message.id or 0),
                text=f"{message.subject or ''}\n{text}"[:20_000],
                old_label=ticket.intent,
                new_label="spam",
                actor=actor,
            )
        )


def reply_sent(session: Session, ticket_id: int | None, *, at: datetime, actor: str) -> None:
    """Our reply went out: the ticket waits on the customer, and the clock stops."""
    ticket = session.get(Ticket, ticket_id) if ticket_id is not None else None
    if ticket is None:
        return
    if ticket.first_response_at is None:
        ticket.first_response_at = at
    ticket.waiting_since = None
    ticket.reply_due = None
    if ticket.status == "open":
        set_status(session, ticket, "pending", actor=actor, reason="our reply was sent")
    session.add(ticket)


def solve_quiet(engine: Engine, desk: Desk, *, now: datetime | None = None) -> int:
    """Pending tickets the customer left alone for `desk.solve_after` become solved."""
    if desk.solve_after is None:
        return 0
    cutoff = (now or utcnow()) - desk.solve_after
    with session_scope(engine) as session:
        quiet = session.exec(
            select(Ticket).where(Ticket.status == "pending", col(Ticket.status_at) <= cutoff)
        ).all()
        for ticket in quiet:
            days = desk.solve_after.days
            set_status(session, ticket, "solved", actor="desk",
                       reason=f"no reply from the customer in {days} days")  # fmt: skip
        return len(quiet)
