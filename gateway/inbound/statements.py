"""The compiled statements of the ingest accept path, one set per database dialect.

Building `.values(...)` per message, or letting SQLAlchemy process every row's
parameters, costs more than the SQLite commit itself, so `ingest.py` sends each table's
rows in one executemany of a statement compiled once (see `storage.bulk`). They live
apart from the ingest logic so that what is stored, and how duplicates are told apart,
reads without the SQL plumbing. INSERT … ON CONFLICT DO NOTHING works on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect

from storage.bulk import Bulk
from storage.models import AuditLog, Message, RawMessage

_RAW_COLUMNS = ("sha256", "size", "data")
_MESSAGE_COLUMNS = (
    "dedupe_key",
    "message_id",
    "sha256",
    "size",
    "direction",
    "source",
    "mailbox",
    "envelope_from",
    "envelope_to",
    "received_at",
    "written_at",
    "state",
    "attempts",
    "claimed_by",
    "claimed_at",
    "error",
    "suppression_reason",
    "ticket_id",
    "thread_signal",
    "parsed",
    "from_addr",
    "from_name",
    "to_addrs",
    "subject",
    "in_reply_to",
    "references",
)
_AUDIT_COLUMNS = ("at", "actor", "action", "entity_type", "entity_id", "details", "model_version")


@dataclass(frozen=True, slots=True)
class Statements:
    put_raw: Bulk
    put_msg: Bulk
    put_one: Bulk  # one message, insert-or-skip, RETURNING its id
    put_audit: Bulk
    find: Any


_STATEMENTS: dict[str, Statements] = {}


def statements(dialect: Dialect) -> Statements:
    """Statements compiled once per dialect and fed plain rows (see `storage.bulk`).

    Building `.values(...)` per message, or letting SQLAlchemy process every row's
    parameters, costs more than the SQLite commit itself, so the accept path sends each
    table's rows in one executemany of a statement compiled once. INSERT … ON CONFLICT
    DO NOTHING works on SQLite and PostgreSQL.
    """
    found = _STATEMENTS.get(dialect.name)
    if found is not None:
        return found
    insert = pg_insert if dialect.name == "postgresql" else sqlite_insert
    raw_t = RawMessage.__table__  # type: ignore[attr-defined]
    msg_t = Message.__table__  # type: ignore[attr-defined]
    audit_t = AuditLog.__table__  # type: ignore[attr-defined]
    put_one = (
        insert(msg_t).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(msg_t.c.id)
    )
    found = Statements(
        put_raw=Bulk(
            insert(raw_t).on_conflict_do_nothing(index_elements=["sha256"]), dialect, _RAW_COLUMNS
        ),
        put_msg=Bulk(msg_t.insert(), dialect, _MESSAGE_COLUMNS),
        put_one=Bulk(put_one, dialect, _MESSAGE_COLUMNS),
        put_audit=Bulk(audit_t.insert(), dialect, _AUDIT_COLUMNS),
        find=select(msg_t.c.dedupe_key, msg_t.c.id).where(
            msg_t.c.dedupe_key.in_(bindparam("keys", expanding=True))
        ),
    )
    _STATEMENTS[dialect.name] = found
    return found
