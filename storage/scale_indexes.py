"""Indexes a PostgreSQL queue of a million messages needs beyond those the models declare.

Each serves reads that would otherwise scan every message (bench/scale_pg.py measures
them at 1,000,000):

- `coalesce(written_at, received_at)`: `patterns`, volume spikes and incident candidates
  select mail by its own time, falling back to its arrival. An index on either column
  alone cannot serve that expression.
- covering indexes for the queue's page query, which sorts the open drafts by a column
  of the draft or of the customer's mail: the draft's (state, id) carrying what that
  query filters, joins and sorts on, and the message's id carrying its time, subject,
  sender and mailbox. Without them a page reads a row of each of the large tables per
  open draft (0.1-2.2 s a page with 90,000 open); with them, two indexes (20-165 ms).
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

from storage.models import Draft, Message, Ticket

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


WRITTEN_OR_RECEIVED = Index(
    "ix_message_written_or_received",
    func.coalesce(col(Message.written_at), col(Message.received_at)),
).ddl_if(dialect="postgresql")

QUEUE_DRAFTS = Index(
    "ix_draft_queue",
    col(Draft.state),
    col(Draft.id),
    postgresql_include=["message_pk", "ticket_id", "confidence", "intent", "to_addr", "subject"],
).ddl_if(dialect="postgresql")

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
