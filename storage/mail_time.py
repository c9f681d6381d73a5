"""The customer mail's own time, copied onto its drafts so the queue sorts by age on one table.

The queue's age sort is the time the customer wrote (`Message.written_at`). Read through
a join, every page at a million messages looked up the mail of each open draft (or walked
the mail's time index probing drafts), 40-200 ms a page; with the time on the draft and
an index that fits the page query (`storage.scale_indexes.QUEUE_AGE`), one index walk.

The copy follows the mail without anyone having to remember it: a draft inserted through
the ORM takes its mail's time, and a change to a mail's time is carried to its drafts
(the pipeline reads the Date header before drafting, so in practice it is set once).
Bulk writers that bypass the ORM (storage/seed/batch.py, bench/scale_data.py) set the
column themselves, and `storage.schema` fills it in for databases older than it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import event, inspect, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import object_session
from sqlalchemy.orm.util import identity_key
from sqlmodel import col

from storage.models import Draft, Message

# For databases that had drafts before the column: each takes its mail's time.
BACKFILL = (
    "UPDATE draft SET mail_written_at = "
    "(SELECT message.written_at FROM message WHERE message.id = draft.message_pk) "
    "WHERE mail_written_at IS NULL"
)


def _mail_time(connection: Connection, target: Draft) -> datetime | None:
    session = object_session(target)
    if session is not None:
        # The mail in this session may carry a time not flushed yet; its value is the truth.
        loaded = session.identity_map.get(identity_key(Message, target.message_pk))
        if isinstance(loaded, Message):
            return loaded.written_at
    found = connection.execute(
        select(col(Message.written_at)).where(col(Message.id) == target.message_pk)
    ).first()
    return found[0] if found else None


@event.listens_for(Draft, "before_insert")
def _draft_takes_mail_time(_mapper: Any, connection: Connection, target: Draft) -> None:
    if target.mail_written_at is None:
        target.mail_written_at = _mail_time(connection, target)


@event.listens_for(Message, "after_update")
def _drafts_follow_mail_time(_mapper: Any, connection: Connection, target: Message) -> None:
    if not inspect(target).attrs.written_at.history.has_changes():
        return
    connection.execute(
        update(Draft)
        .where(col(Draft.message_pk) == target.id)
        .values(mail_written_at=target.written_at)
    )
