"""The incident tables: one row per declared incident, its tickets, notices, deliveries.

A candidate incident is computed, not stored; it becomes a row when ops declare it.
`IncidentDelivery` has one row per notice and customer address, under a unique
constraint: whatever a rep does twice, one update reaches one address once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.models import UTCDateTime, utcnow

STATUSES = ("investigating", "identified", "monitoring", "resolved")


class Incident(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="investigating", max_length=32, index=True)
    # [[kind, value], ...]: the keys that joined its tickets; new tickets naming a
    # strong one are attached as they arrive.
    keys: list[list[str]] = Field(default_factory=list, sa_column=Column(JSON))
    candidate_ref: str | None = Field(default=None, max_length=300)
    declared_by: str = Field(max_length=200)
    declared_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    started_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class IncidentTicket(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("incident_id", "ticket_id", name="uq_incident_ticket"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    attached_by: str = Field(max_length=200)
    attached_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    # Why: "declared with the candidate", "signature=3f2a…" (matched on arrival), "by hand".
    reason: str = Field(default="", sa_column=Column(Text))


class IncidentNotice(SQLModel, table=True):
    """One update written by ops: the template, and the status it announced."""

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    status: str = Field(max_length=32)
    subject: str = Field(default="", sa_column=Column(Text))
    body: str = Field(default="", sa_column=Column(Text))
    written_by: str = Field(max_length=200)
    written_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    released_by: str | None = Field(default=None, max_length=200)
    released_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    recipients: int = 0


class IncidentDelivery(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("notice_id", "address", name="uq_notice_address"),)

    id: int | None = Field(default=None, primary_key=True)
    notice_id: int = Field(foreign_key="incidentnotice.id", index=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    address: str = Field(max_length=998)
    ticket_id: int = Field(foreign_key="ticket.id")
    outbox_id: int | None = Field(default=None, foreign_key="outbox.id")
    # Every ticket of this customer the notice answered (their drafts were superseded).
    answered: list[int] = Field(default_factory=list, sa_column=Column(JSON))
    values: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
