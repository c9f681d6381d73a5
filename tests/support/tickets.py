"""Reading back what the pipeline made of a message: its ticket."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session

from storage.models import Message, Ticket


def ticket_of(engine: Engine, message_pk: int) -> Ticket:
    """The ticket the pipeline put message `message_pk` in (it must have one)."""
    with Session(engine) as session:
        message = session.get(Message, message_pk)
        assert message is not None and message.ticket_id is not None
        ticket = session.get(Ticket, message.ticket_id)
        assert ticket is not None
        return ticket
