"""Who has a ticket: take it, assign it, hand it over; and a rep's priority override.

Each act is one audited transaction. A ticket has at most one owner and one team; a
rep's own queue is "mine, and unassigned in my teams" (`mine_filter`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_
from sqlalchemy.engine import Engine
from sqlmodel import col

from storage.audit import audit
from storage.db import session_scope
from storage.desk.hours import PRIORITIES, Desk
from storage.models import Ticket
from storage.review.types import ReviewError


def assign(
    engine: Engine,
    ticket_id: int,
    *,
    actor: str,
    owner: str | None = None,
    team: str | None = None,
    desk: Desk | None = None,
) -> None:
    """Give the ticket to `owner` (None: nobody) and/or `team`; `take` is owner=actor."""
    if not actor.strip():
        raise ReviewError("assigning a ticket needs a named rep")
    if desk is not None and team and team not in {name for name, _ in desk.teams}:
        raise ReviewError(f"no team called {team!r} (see [[team]] in the config)")
    with session_scope(engine) as session:
        ticket = session.get(Ticket, ticket_id)
        if ticket is None:
            raise ReviewError(f"ticket {ticket_id} does not exist")
        before = {"owner": ticket.owner, "team": ticket.team}
        ticket.owner = owner.strip() if owner and owner.strip() else None
        if team is not None:
            ticket.team = team or None
        session.add(ticket)
        audit(
            session,
            actor=actor,
            action="ticket.assigned",
            entity_type="ticket",
            entity_id=ticket_id,
            details={"from": before, "to": {"owner": ticket.owner, "team": ticket.team}},
        )


def take(engine: Engine, ticket_id: int, *, actor: str) -> None:
    assign(engine, ticket_id, actor=actor, owner=actor)


def set_priority(engine: Engine, ticket_id: int, priority: str, *, actor: str) -> None:
    """A rep's priority; the desk never changes it afterwards."""
    if priority not in PRIORITIES:
        raise ReviewError(f"priority must be one of {', '.join(PRIORITIES)}")
    with session_scope(engine) as session:
        ticket = session.get(Ticket, ticket_id)
        if ticket is None:
            raise ReviewError(f"ticket {ticket_id} does not exist")
        old = ticket.priority
        ticket.priority, ticket.priority_by = priority, actor
        session.add(ticket)
        audit(
            session,
            actor=actor,
            action="ticket.priority",
            entity_type="ticket",
            entity_id=ticket_id,
            details={"from": old, "to": priority},
        )


def mine_filter(actor: str, teams: tuple[str, ...]) -> Any:
    """Tickets the rep owns, and unowned ones of the rep's teams (or of no team)."""
    unowned = col(Ticket.owner).is_(None)
    in_teams = or_(col(Ticket.team).is_(None), col(Ticket.team).in_(list(teams)))
    return or_(col(Ticket.owner) == actor, and_(unowned, in_teams))
