"""SQLModel tables of the queue.

Raw mail lives in its own content-addressed table so that the row that acknowledges a
message (SMTP 250, IMAP flag) and the bytes it stands for are written in one
transaction: there is no window in which a message row points at a missing file.
JSON columns hold evidence (entities with offsets, scores, log lines) exactly as the
analysis produced it. Nothing here is SQLite-only; the same tables run on PostgreSQL.

Why this module is long: the queue's tables belong together (a reader should see the
message, its ticket, draft and outbox row side by side), and they are only fields.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, DateTime, LargeBinary, Text, UniqueConstraint, event
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every backend (SQLite keeps no offset, so we restore it)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class MessageState(StrEnum):
    RECEIVED = "received"
    ANALYSING = "analysing"
    DRAFTED = "drafted"
    SUPPRESSED = "suppressed"
    APPROVED = "approved"
    SENT = "sent"
    SHUNTED = "shunted"


class DraftState(StrEnum):
    DRAFTED = "drafted"
    NEEDS_TRIAGE = "needs_triage"
    STALE = "stale"
    # A newer draft answers the ticket; the text stays on the row, it is just not sendable.
    SUPERSEDED = "superseded"
    APPROVED = "approved"
    DISCARDED = "discarded"
    SENT = "sent"
    FAILED = "failed"


class OutboxState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    # Sent state unknown: the sender died between the SMTP transaction and the commit.
    UNCERTAIN = "uncertain"


class RawMessage(SQLModel, table=True):
    """Content-addressed raw bytes exactly as they arrived."""

    sha256: str = Field(primary_key=True, max_length=64)
    size: int
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class Message(SQLModel, table=True):
    """One email, inbound or outbound, and where it is in the queue."""

    __table_args__ = (UniqueConstraint("dedupe_key", name="uq_message_dedupe_key"),)

    id: int | None = Field(default=None, primary_key=True)
    # "mid:<Message-ID>" or "sha:<sha256 of raw bytes>": the idempotency key.
    dedupe_key: str = Field(max_length=1024)
    message_id: str | None = Field(default=None, max_length=998, index=True)
    sha256: str = Field(foreign_key="rawmessage.sha256", max_length=64)
    size: int = 0
    direction: str = Field(default="inbound", max_length=16)
    source: str = Field(default="smtp", max_length=200)
    mailbox: str | None = Field(default=None, max_length=200)
    envelope_from: str | None = Field(default=None, max_length=998)
    envelope_to: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    from_addr: str | None = Field(default=None, max_length=998)
    from_name: str | None = Field(default=None, max_length=998)
    to_addrs: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    subject: str | None = Field(default=None, sa_column=Column(Text))
    in_reply_to: str | None = Field(default=None, max_length=998)
    references: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    received_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False, index=True)
    )
    # The mail's own time (its Date header, when believable; see gateway.conversation.clock)
    # for queue age, patterns and incidents. Until the pipeline reads the Date it is the
    # arrival; `time_note` says why a Date was not believed.
    written_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True, index=True)
    )
    time_note: str | None = Field(default=None, sa_column=Column(Text))
    state: str = Field(default=MessageState.RECEIVED, max_length=32, index=True)
    attempts: int = 0
    claimed_by: str | None = Field(default=None, max_length=200)
    claimed_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    error: str | None = Field(default=None, sa_column=Column(Text))
    suppression_reason: str | None = Field(default=None, sa_column=Column(Text))
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    thread_signal: str | None = Field(default=None, max_length=200)
    # Parse summary kept for export/UI without re-parsing: body text, attachments, defects.
    parsed: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


@event.listens_for(Message, "before_insert")
def _written_defaults_to_arrival(_mapper: Any, _conn: Any, target: Message) -> None:
    if target.written_at is None:
        target.written_at = target.received_at


class Ticket(SQLModel, table=True):
    """A conversation: the customer's messages and our replies."""

    id: int | None = Field(default=None, primary_key=True)
    subject: str = Field(default="", sa_column=Column(Text))
    customer_addr: str | None = Field(default=None, max_length=998, index=True)
    customer_name: str | None = Field(default=None, max_length=998)
    mailbox: str | None = Field(default=None, max_length=200)
    # Indexed: the queue's pending, solved and spam views list a few tickets of many.
    status: str = Field(default="open", max_length=32, index=True)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    intent: str | None = Field(default=None, max_length=64, index=True)
    confidence: float | None = None
    signature: str | None = Field(default=None, max_length=64, index=True)
    # The desk (storage/desk): who has it, how urgent, and when our reply is due.
    owner: str | None = Field(default=None, max_length=200, index=True)
    team: str | None = Field(default=None, max_length=200, index=True)
    routed_by: str | None = Field(default=None, sa_column=Column(Text))
    priority: str | None = Field(default=None, max_length=16)
    priority_by: str | None = Field(default=None, max_length=200)
    waiting_since: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    reply_due: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), index=True))
    first_response_due: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    first_response_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    status_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    # A closed ticket's successor names it; a merged ticket names the one it went into.
    linked_ticket: int | None = Field(default=None)
    # Collision guard: which rep has the ticket open, until when.
    lease_holder: str | None = Field(default=None, max_length=200)
    lease_expires_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )


class AnalysisRecord(SQLModel, table=True):
    """The stored form of `nlp.types.Analysis` for one message."""

    __tablename__ = "analysis"

    id: int | None = Field(default=None, primary_key=True)
    message_pk: int = Field(foreign_key="message.id", index=True)
    model_version: str = Field(max_length=200)
    intent: str = Field(max_length=64)
    confidence: float
    abstained: bool = False
    scores: dict[str, float] = Field(default_factory=dict, sa_column=Column(JSON))
    entities: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    log_findings: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    reply_text: str = Field(default="", sa_column=Column(Text))
    notes: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    # What the mail names for finding incidents ([kind, value] pairs: storage.incidents.facts);
    # NULL until computed (rows from before the column, or not yet read).
    incident_keys: list[list[str]] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )


class Draft(SQLModel, table=True):
    """A proposed reply waiting for a human. `version` guards concurrent edits."""

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    message_pk: int = Field(foreign_key="message.id", index=True)
    state: str = Field(default=DraftState.DRAFTED, max_length=32, index=True)
    version: int = 1
    to_addr: str = Field(default="", max_length=998)
    subject: str = Field(default="", sa_column=Column(Text))
    body: str = Field(default="", sa_column=Column(Text))
    intent: str | None = Field(default=None, max_length=64, index=True)
    confidence: float | None = Field(default=None, index=True)
    model_version: str | None = Field(default=None, max_length=200)
    article_id: str | None = Field(default=None, max_length=200)
    suggestions: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    unfilled: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    rationale: str = Field(default="", sa_column=Column(Text))
    evidence: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    updated_by: str | None = Field(default=None, max_length=200)
    # The customer mail's own time (its `Message.written_at`), copied so that the queue's
    # age sort reads the draft alone; kept in step by storage.mail_time. Its index is
    # PostgreSQL's, of the open drafts (storage.scale_indexes.QUEUE_SORTS).
    mail_written_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )


class Outbox(SQLModel, table=True):
    """A released reply. Only a human release creates rows here; the sender drains it."""

    id: int | None = Field(default=None, primary_key=True)
    draft_id: int | None = Field(default=None, foreign_key="draft.id", index=True)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    state: str = Field(default=OutboxState.PENDING, max_length=32, index=True)
    # Our Message-ID, fixed at release so a retry is recognisably the same message.
    message_id: str = Field(max_length=998, index=True)
    to_addrs: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    subject: str = Field(default="", sa_column=Column(Text))
    body: str = Field(default="", sa_column=Column(Text))
    in_reply_to: str | None = Field(default=None, max_length=998)
    references: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    released_by: str = Field(max_length=200)
    released_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    bulk_id: str | None = Field(default=None, max_length=64)
    attempts: int = 0
    next_attempt_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    claimed_by: str | None = Field(default=None, max_length=200)
    claimed_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class ImapCheckpoint(SQLModel, table=True):
    """Per mailbox+folder: which UIDs are safely stored, and how the last sync went."""

    __table_args__ = (UniqueConstraint("mailbox", "folder", name="uq_imap_mailbox_folder"),)

    id: int | None = Field(default=None, primary_key=True)
    mailbox: str = Field(max_length=200)
    folder: str = Field(max_length=500)
    uidvalidity: int | None = None
    last_uid: int = 0
    last_sync_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    last_error_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )


class AuditLog(SQLModel, table=True):
    """Who did what, when, and why. Written in the same transaction as the change."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False, index=True)
    )
    actor: str = Field(max_length=200)
    action: str = Field(max_length=64, index=True)
    entity_type: str = Field(max_length=32)
    entity_id: int | None = None
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    model_version: str | None = Field(default=None, max_length=200)


class LabelCorrection(SQLModel, table=True):
    """A rep's relabel of a message's intent; `export-labels` turns these into training rows."""

    id: int | None = Field(default=None, primary_key=True)
    message_pk: int = Field(foreign_key="message.id", index=True)
    text: str = Field(default="", sa_column=Column(Text))
    old_label: str | None = Field(default=None, max_length=64)
    new_label: str = Field(max_length=64)
    actor: str = Field(max_length=200)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class SenderRate(SQLModel, table=True):
    """Counters for the loop guard: messages per sender (or thread) in a time window."""

    __table_args__ = (UniqueConstraint("key", "window_start", name="uq_rate_key_window"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=998, index=True)
    window_start: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    count: int = 0
