"""One queue row: the columns a page reads, and the row a rep sees, flags included.

The flags (urgent, security, the language when not English) come from the brief that
drafting stored with the draft, so the queue shows them without a schema change. The
desk's columns (owner, team, priority, when the reply is due, status) are the ticket's.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import col

from storage.models import Draft, Message, Ticket
from storage.review.types import QueueRow

ROW_COLUMNS: tuple[Any, ...] = (
    col(Draft.id),
    col(Draft.ticket_id),
    col(Message.received_at),
    col(Message.written_at),
    col(Draft.to_addr),
    col(Message.from_addr),
    col(Message.subject),
    col(Draft.subject),
    col(Draft.intent),
    col(Draft.confidence),
    col(Ticket.signature),
    col(Draft.state),
    col(Draft.version),
    col(Ticket.lease_holder),
    col(Ticket.lease_expires_at),
    col(Message.mailbox),
    col(Draft.evidence),
    col(Ticket.owner),
    col(Ticket.team),
    col(Ticket.priority),
    col(Ticket.reply_due),
    col(Ticket.status),
)


def queue_row(r: Any) -> QueueRow:
    (
        did,
        tid,
        at,
        written,
        to_addr,
        from_addr,
        subject,
        reply_subject,
        intent,
        conf,
        sig,
        state,
        version,
        holder,
        expires,
        mailbox,
        evidence,
        owner,
        team,
        priority,
        reply_due,
        status,
    ) = r
    return QueueRow(
        draft_id=int(did),
        ticket_id=int(tid),
        received_at=at,
        written_at=written or at,
        sender=to_addr or from_addr or "",
        subject=subject or reply_subject or "",
        reply_subject=reply_subject or "",
        intent=intent,
        confidence=conf,
        signature=sig,
        state=state,
        version=version,
        lease_holder=holder,
        lease_expires_at=expires,
        mailbox=mailbox,
        flags=_flags(evidence),
        owner=owner,
        team=team,
        priority=priority,
        reply_due=reply_due,
        status=status or "open",
    )


def _flags(evidence: Any) -> tuple[str, ...]:
    """What a rep must see before opening a ticket: urgency, security, language."""
    brief = evidence.get("brief") if isinstance(evidence, dict) else None
    if not isinstance(brief, dict):
        return ()
    flags = []
    if brief.get("urgent"):
        flags.append("urgent")
    if any(str(f).startswith("security") for f in brief.get("flags") or []):
        flags.append("security")
    language = str(brief.get("language") or "en")
    if language != "en":
        flags.append(language[:5])
    return tuple(flags)
