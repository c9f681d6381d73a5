"""Indexes a PostgreSQL queue of a million messages needs beyond those the models declare.

Each serves reads that would otherwise scan every message (bench/scale_pg.py measures
them at 1,000,000):

- `coalesce(written_at, received_at)`: `patterns`, volume spikes and incident candidates
  select mail by its own time, falling back to its arrival. An index on either column
  alone cannot serve that expression. It carries what counting mail per bin and intent
  reads (storage/volume.py), as does the analysis's `message_pk` index its intent, so
  four weeks of mail (77,000 at a million a year) are counted from the two indexes
  (0.15 s) instead of a row of each large table per mail (0.45 s).
- covering indexes for the queue's page query, which sorts the open drafts by a column
  of the draft or of the customer's mail: the draft's (state, id) carrying what that
  query filters, joins and sorts on, and the message's id carrying its time, subject,
  sender and mailbox. Without them a page reads a row of each of the large tables per
  open draft (0.1-2.2 s a page with 90,000 open); with them, two indexes (20-165 ms).
- partial indexes of the open drafts alone, one in the order of each sort on the
  draft's own columns: age (the customer mail's time, copied onto the draft:
  storage/mail_time.py), confidence, sender and intent. A page walks one and stops
  after the page (0.1-20 ms in the database at any depth with 90,000 open) where the
  covering index above had every open draft read and sorted, and age joined each to
  its mail (40-200 ms a page at 1,000,000 messages).
- partial indexes of the open tickets, for the desk's views ("mine", "all": open drafts
  of open tickets): one in due order, one by id to look a ticket up, both carrying
  owner and team for "mine". The first page by due, the desk's default, went from
  0.3-0.4 s (every open ticket joined and sorted) to a few ms; a page deep into "all"
  still joins and sorts all of them (60-110 ms).
- trigram (pg_trgm) GIN indexes on what the queue's search looks in: the draft's subject
  and recipient, the customer mail's subject and sender, the ticket's failure signature.
  `ILIKE '%term%'` keeps its meaning (any substring, any case) and the index finds the
  rows; `storage.review.search` writes the query so PostgreSQL can use them.

They exist on PostgreSQL only (`ddl_if`). SQLite keeps the plans measured for it at
100,000 drafts (bench/tui_queue.py), and it cannot reflect expression indexes, which
`storage.schema.upgrade` relies on to tell what is missing. `CREATE EXTENSION pg_trgm`
needs the CREATE privilege on the database (pg_trgm is a trusted extension from
PostgreSQL 13); where it cannot be created, the trigram indexes are left out with a
warning and search reads the open drafts as before.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Index, func
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlmodel import col

from storage.models import AnalysisRecord, Draft, DraftState, Message, Ticket

log = logging.getLogger(__name__)


def _trigrams_available(
    ddl: Any, target: Any, bind: Connection | None, tables: Any = None, state: Any = None, **kw: Any
) -> bool:
    """Create pg_trgm if it is missing; whether trigram indexes can be built."""
    if bind is None:  # compiled to a string, not run
        return True
    try:
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DBAPIError as exc:
        log.warning("pg_trgm is not available (%s); queue search will not use trigram "
                    "indexes", str(exc.orig).strip().splitlines()[0])  # fmt: skip
        return False
    return True


def _trigram_index(table: str, column: str, attribute: Any) -> Index:
    return Index(
        f"ix_{table}_{column}_trgm",
        attribute,
        postgresql_using="gin",
        postgresql_ops={column: "gin_trgm_ops"},
    ).ddl_if(dialect="postgresql", callable_=_trigrams_available)


MAIL_TIME = Index(
    "ix_message_mail_time",
    func.coalesce(col(Message.written_at), col(Message.received_at)),
    postgresql_include=["direction", "written_at", "received_at", "id"],
).ddl_if(dialect="postgresql")
# MAIL_TIME's earlier form, without what it carries: storage.schema drops it.
RETIRED = ("ix_message_written_or_received",)

ANALYSIS_INTENT = Index(
    "ix_analysis_message_intent",
    col(AnalysisRecord.message_pk),
    postgresql_include=["intent"],
).ddl_if(dialect="postgresql")

QUEUE_DRAFTS = Index(
    "ix_draft_queue",
    col(Draft.state),
    col(Draft.id),
    postgresql_include=["message_pk", "ticket_id", "confidence", "intent", "to_addr", "subject"],
).ddl_if(dialect="postgresql")

# The queue's open drafts (storage.review.types.OPEN_STATES; a test keeps the two equal).
QUEUE_OPEN_STATES = (DraftState.DRAFTED, DraftState.NEEDS_TRIAGE, DraftState.STALE)


def _open_drafts_by(
    name: str, column: Any, *, carrying: tuple[str, ...] = ("ticket_id", "message_pk")
) -> Index:
    """The open drafts in the order of one sort: a page walks it and stops after the page.
    It carries what the desk's views and search join on: the ticket and the mail."""
    return Index(
        f"ix_draft_open_by_{name}",
        column,
        col(Draft.id),
        postgresql_include=list(carrying),
        postgresql_where=col(Draft.state).in_([str(s) for s in QUEUE_OPEN_STATES]),
    ).ddl_if(dialect="postgresql")


QUEUE_SORTS = (
    _open_drafts_by("age", col(Draft.mail_written_at)),
    _open_drafts_by("confidence", col(Draft.confidence)),
    _open_drafts_by("sender", col(Draft.to_addr)),
    _open_drafts_by("intent", col(Draft.intent)),
    # The desk's views join each open draft to its ticket, and sort by either's columns.
    _open_drafts_by(
        "ticket",
        col(Draft.ticket_id),
        carrying=("mail_written_at", "confidence", "to_addr", "intent"),
    ),
)

# The desk's views ("mine", "all") list the open drafts of open tickets: by when a reply
# is due, walking the first; by a draft's column, walking its index above and looking
# each ticket up in the second. Both carry what "mine" tests.
OPEN_TICKETS = (
    Index(
        "ix_ticket_open_due",
        col(Ticket.reply_due),
        col(Ticket.id),
        postgresql_include=["owner", "team"],
        postgresql_where=col(Ticket.status) == "open",
    ).ddl_if(dialect="postgresql"),
    Index(
        "ix_ticket_open",
        col(Ticket.id),
        postgresql_include=["owner", "team", "reply_due"],
        postgresql_where=col(Ticket.status) == "open",
    ).ddl_if(dialect="postgresql"),
)

QUEUE_MESSAGES = Index(
    "ix_message_queue",
    col(Message.id),
    postgresql_include=["written_at", "subject", "from_addr", "mailbox"],
).ddl_if(dialect="postgresql")

TRIGRAMS = (
    _trigram_index("draft", "subject", col(Draft.subject)),
    _trigram_index("draft", "to_addr", col(Draft.to_addr)),
    _trigram_index("message", "subject", col(Message.subject)),
    _trigram_index("message", "from_addr", col(Message.from_addr)),
    _trigram_index("ticket", "signature", col(Ticket.signature)),
)
