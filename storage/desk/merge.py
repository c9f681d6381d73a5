"""Merge two tickets about the same problem; split a message off into a ticket of its own.

Threading guesses, and a customer sometimes writes twice about one problem (or once
about two). Merging moves every message, draft and released reply of one ticket into
the other, keeps the merged ticket as a closed pointer (`linked_ticket`, status
"merged"), and audits what moved; split moves one customer message and its drafts to a
new ticket. Both are one transaction, so nothing is ever in two tickets or in none.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from storage.audit import audit
from storage.db import session_scope
from storage.models import Draft, Message, Outbox, Ticket, utcnow
from storage.review.types import ReviewError


def merge(engine: Engine, from_ticket: int, into_ticket: int, *, actor: str) -> None:
    """Everything of `from_ticket` moves into `into_ticket`."""
    if not actor.strip():
        raise ReviewError("merging tickets needs a named rep")
    if from_ticket == into_ticket:
        raise ReviewError("a ticket cannot be merged into itself")
    with session_scope(engine) as session:
        source = session.get(Ticket, from_ticket)
        target = session.get(Ticket, into_ticket)
        if source is None or target is None:
            raise ReviewError(
                f"ticket {from_ticket if source is None else into_ticket} does not exist"
            )
        if source.status == "merged":
            raise ReviewError(
                f"ticket {from_ticket} was already merged into #{source.linked_ticket}"
            )
        moved = {}
        for table in (Message, Draft, Outbox):
            result = session.execute(
                update(table)
                .where(col(table.ticket_id) == from_ticket)
                .values(ticket_id=into_ticket)
            )
            moved[table.__name__.lower()] = _count(result)
        # The target now owes the earlier of the two replies.
        if source.waiting_since and (
            not target.waiting_since or source.waiting_since < target.waiting_since
        ):
            target.waiting_since = source.waiting_since
            target.reply_due = source.reply_due or target.reply_due
        old_status = source.status
        source.status, source.linked_ticket = "merged", into_ticket
        source.reply_due = source.waiting_since = None
        source.status_at = utcnow()
        session.add_all([source, target])
        audit(
            session,
            actor=actor,
            action="ticket.merged",
            entity_type="ticket",
            entity_id=into_ticket,
            details={"from": from_ticket, "from_status": old_status, "moved": moved},
        )


def split(engine: Engine, message_pk: int, *, actor: str) -> int:
    """`message_pk` (a customer's mail) and its drafts start a new ticket; its id."""
    if not actor.strip():
        raise ReviewError("splitting a ticket needs a named rep")
    with session_scope(engine) as session:
        message = session.get(Message, message_pk)
        if message is None or message.ticket_id is None:
            raise ReviewError(f"message {message_pk} is not in a ticket")
        if message.direction != "inbound":
            raise ReviewError("only a customer's mail can be split off")
        old = session.get(Ticket, message.ticket_id)
        assert old is not None
        others = session.exec(
            select(Message.id).where(Message.ticket_id == old.id, Message.id != message_pk)
        ).all()
        if not others:
            raise ReviewError("the ticket has no other message: nothing to split from")
        ticket = Ticket(
            subject=message.subject or old.subject,
            customer_addr=message.from_addr or old.customer_addr,
            customer_name=old.customer_name,
            mailbox=message.mailbox,
            intent=old.intent,
            team=old.team,
            owner=old.owner,
            priority=old.priority,
            priority_by=old.priority_by,
            waiting_since=message.written_at or message.received_at,
            reply_due=old.reply_due,
            linked_ticket=old.id,
        )
        session.add(ticket)
        session.flush()
        message.ticket_id = ticket.id
        session.add(message)
        drafts = session.execute(
            update(Draft).where(col(Draft.message_pk) == message_pk).values(ticket_id=ticket.id)
        )
        audit(
            session,
            actor=actor,
            action="ticket.split",
            entity_type="ticket",
            entity_id=ticket.id,
            details={"from": old.id, "message": message_pk, "drafts": _count(drafts)},
        )
        return int(ticket.id or 0)


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
