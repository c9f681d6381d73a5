"""Small reads for showing incidents side by side: their tickets, mail times and drafts.

`ops.incident_view` reads one incident in full; a list of incidents needs a few facts
about all of them at once (who is attached, when their mail came, which drafts are
still open), read in one query each instead of one view per incident.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from storage.incidents.tables import IncidentTicket
from storage.models import Draft, Message, MessageState, Ticket
from storage.review.types import OPEN_STATES

_SKIPPED = (MessageState.SUPPRESSED, MessageState.SHUNTED)


def attached_tickets(session: Session) -> dict[int, dict[int, str]]:
    """Every incident's tickets: incident id → {ticket id: customer address}."""
    rows = session.execute(
        sa_select(
            col(IncidentTicket.incident_id),
            col(IncidentTicket.ticket_id),
            col(Ticket.customer_addr),
        ).join(Ticket, col(Ticket.id) == col(IncidentTicket.ticket_id))
    ).all()
    out: dict[int, dict[int, str]] = defaultdict(dict)
    for incident_id, ticket_id, customer in rows:
        out[int(incident_id)][int(ticket_id)] = (customer or "").lower()
    return dict(out)


def mail_times(session: Session, ticket_ids: Iterable[int]) -> dict[int, list[datetime]]:
    """The customer mails' own times per ticket (for a sparkline), oldest first."""
    wanted = sorted({int(t) for t in ticket_ids})
    if not wanted:
        return {}
    rows = session.execute(
        sa_select(col(Message.ticket_id), col(Message.written_at), col(Message.received_at)).where(
            col(Message.ticket_id).in_(wanted),
            col(Message.direction) == "inbound",
            col(Message.state).not_in(_SKIPPED),
        )
    ).all()
    out: dict[int, list[datetime]] = defaultdict(list)
    for ticket_id, written, received in rows:
        when = written or received
        if when is not None:
            out[int(ticket_id)].append(when)
    return {tid: sorted(times) for tid, times in out.items()}


def tickets_by_id(session: Session, ticket_ids: Iterable[int]) -> list[Ticket]:
    """The tickets with these ids that exist, by id."""
    wanted = sorted({int(t) for t in ticket_ids})
    if not wanted:
        return []
    return list(
        session.exec(select(Ticket).where(col(Ticket.id).in_(wanted)).order_by(col(Ticket.id)))
    )


def open_draft_ids(session: Session, ticket_ids: Iterable[int]) -> list[int]:
    """The open drafts (still in the review queue) of these tickets."""
    wanted = sorted({int(t) for t in ticket_ids})
    if not wanted:
        return []
    rows = session.exec(
        select(Draft.id).where(col(Draft.ticket_id).in_(wanted), col(Draft.state).in_(OPEN_STATES))
    ).all()
    return sorted(int(i) for i in rows if i is not None)
