"""Threading: put each message on the ticket it belongs to, and record why.

A reply split into a new ticket means two reps answering one customer, so the signals
are tried strongest first and the one that matched is stored on the message:

1. `in-reply-to` — the message answers a stored message (ours or the customer's);
2. `references`  — any id in References, newest first (clients truncate and reorder,
                   so every id counts, not just the first);
3. `subject-token` — a `[#<ticket>]` token we put in every outgoing subject survives
                   clients that strip References (webmail, some mobile apps);
4. `new`         — otherwise a new ticket. Equal subjects alone never join tickets:
                   "Help" from two customers is two problems.

Our own outbound messages count: the sender stores each sent reply as an outbound
`Message`, and a released-but-unsent `Outbox` row is consulted too, so a very quick
customer reply still finds its ticket. New mail on a ticket marks the draft that was
waiting for review stale, because it answers a conversation that has moved on.
"""

from __future__ import annotations

import re

from sqlmodel import Session, col, select

from nlp.types import ParsedMessage
from storage.audit import audit
from storage.models import Draft, DraftState, Message, Outbox, Ticket, utcnow

IN_REPLY_TO = "in-reply-to"
REFERENCES = "references"
SUBJECT_TOKEN = "subject-token"
NEW = "new"

TOKEN = re.compile(r"\[#(\d{1,18})\]")
_PENDING = (DraftState.DRAFTED, DraftState.NEEDS_TRIAGE)
# A References header can be arbitrarily long; only the root and the newest ids count.
MAX_REFERENCES = 100


def _variants(msgid: str) -> list[str]:
    bare = msgid.strip().strip("<>")
    return [bare, f"<{bare}>"]


def ticket_for_message_id(session: Session, msgid: str, *, exclude: int | None) -> int | None:
    """The ticket of a stored message (or released reply) with this Message-ID."""
    if not msgid:
        return None
    stmt = select(Message.ticket_id).where(
        col(Message.message_id).in_(_variants(msgid)), col(Message.ticket_id).is_not(None)
    )
    if exclude is not None:
        stmt = stmt.where(col(Message.id) != exclude)
    found = session.exec(stmt.order_by(col(Message.id).desc())).first()
    if found is not None:
        return int(found)
    outbox = session.exec(
        select(Outbox.ticket_id).where(
            col(Outbox.message_id).in_(_variants(msgid)), col(Outbox.ticket_id).is_not(None)
        )
    ).first()
    return int(outbox) if outbox is not None else None


def _newest_reference_ticket(
    session: Session, references: tuple[str, ...], *, exclude: int | None
) -> int | None:
    """The ticket of the newest referenced message we know, in one query per table."""
    # The root (first) and the newest ids are the ones clients keep when they trim.
    kept = (*references[:1], *references[1:][-(MAX_REFERENCES - 1) :])
    refs = list(dict.fromkeys(r.strip().strip("<>") for r in kept if r.strip()))
    if not refs:
        return None
    wanted = [v for r in refs for v in _variants(r)]
    stmt = select(Message.message_id, Message.ticket_id).where(
        col(Message.message_id).in_(wanted), col(Message.ticket_id).is_not(None)
    )
    if exclude is not None:
        stmt = stmt.where(col(Message.id) != exclude)
    known = {str(mid).strip("<>"): int(tid) for mid, tid in session.exec(stmt).all() if tid}
    outbox = select(Outbox.message_id, Outbox.ticket_id).where(
        col(Outbox.message_id).in_(wanted), col(Outbox.ticket_id).is_not(None)
    )
    for mid, tid in session.exec(outbox).all():
        if tid is not None:
            known.setdefault(str(mid).strip("<>"), int(tid))
    for ref in reversed(refs):
        if ref in known:
            return known[ref]
    return None


def subject_ticket(session: Session, subject: str) -> int | None:
    """The ticket named by the last `[#id]` token in the subject, if it exists."""
    for match in reversed(TOKEN.findall(subject or "")):
        ticket = session.get(Ticket, int(match))
        if ticket is not None:
            return int(ticket.id or 0)
    return None


def find_ticket(
    session: Session, parsed: ParsedMessage, *, exclude: int | None = None
) -> tuple[int | None, str]:
    """(ticket id, signal) by the rules above; (None, "new") if nothing matched."""
    if parsed.in_reply_to:
        found = ticket_for_message_id(session, parsed.in_reply_to, exclude=exclude)
        if found is not None:
            return found, IN_REPLY_TO
    found = _newest_reference_ticket(session, parsed.references, exclude=exclude)
    if found is not None:
        return found, REFERENCES
    found = subject_ticket(session, parsed.subject)
    if found is not None:
        return found, SUBJECT_TOKEN
    return None, NEW


def assign_ticket(
    session: Session, message: Message, parsed: ParsedMessage, *, actor: str = "thread"
) -> tuple[Ticket, str]:
    """Attach `message` to its ticket (creating one if new); store and return the signal."""
    ticket_id, signal = find_ticket(session, parsed, exclude=message.id)
    ticket = session.get(Ticket, ticket_id) if ticket_id is not None else None
    if ticket is None:
        signal = NEW
        ticket = Ticket(
            subject=parsed.subject,
            customer_addr=parsed.from_addr or message.envelope_from,
            customer_name=parsed.from_name or None,
            mailbox=message.mailbox,
        )
        session.add(ticket)
        session.flush()
    else:
        ticket.updated_at = utcnow()
        if ticket.status != "open":
            ticket.status = "open"
        session.add(ticket)
        mark_stale(session, int(ticket.id or 0), by_message=message.id, actor=actor)
    message.ticket_id = ticket.id
    message.thread_signal = signal
    session.add(message)
    return ticket, signal


def mark_stale(session: Session, ticket_id: int, *, by_message: int | None, actor: str) -> int:
    """Pending drafts of the ticket become stale; returns how many."""
    drafts = session.exec(
        select(Draft).where(Draft.ticket_id == ticket_id, col(Draft.state).in_(_PENDING))
    ).all()
    for draft in drafts:
        old = draft.state
        draft.state = DraftState.STALE
        draft.version += 1
        draft.updated_at = utcnow()
        draft.updated_by = actor
        session.add(draft)
        audit(
            session,
            actor=actor,
            action="draft.stale",
            entity_type="draft",
            entity_id=draft.id,
            details={"from": old, "new_message": by_message},
        )
    return len(drafts)
