"""Each draft carries its mail's own time, and the queue's age order stays the mail's.

The queue sorts by age on `Draft.mail_written_at`, a copy of the customer mail's
`Message.written_at` (storage/mail_time.py). The copy must equal the mail's time when
the draft is written, after the mail's time changes, and in a database upgraded from a
version without the column, on SQLite and on PostgreSQL alike.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from storage.db import session_scope
from storage.models import Draft, Message
from storage.review import QueueFilter, page_queue
from storage.schema import upgrade
from storage.seed import FIXED_NOW, add_ticket


@pytest.fixture
def db(sqlite_and_pg: Engine) -> Engine:
    return sqlite_and_pg


def fill(engine: Engine) -> list[int]:
    """Nine tickets whose mail times run against their arrival (and tie in pairs)."""
    drafts = []
    for n in range(9):
        _, draft_id = add_ticket(
            engine,
            sender=f"c{n}@customer{n}.example",
            subject=f"case {n}",
            body="help",
            received_at=FIXED_NOW - timedelta(minutes=n),
        )
        drafts.append(draft_id)
    with session_scope(engine) as session:
        for n, draft_id in enumerate(drafts):
            draft = session.get(Draft, draft_id)
            assert draft is not None
            message = session.get(Message, draft.message_pk)
            assert message is not None
            # Written long before arrival, in an order of its own; 0/1, 2/3… share a time.
            message.written_at = FIXED_NOW - timedelta(days=3, hours=(n // 2 * 5) % 7)
            session.add(message)
    return drafts


def copies(engine: Engine) -> list[tuple[object, object]]:
    with Session(engine) as session:
        rows = session.exec(
            select(Draft.mail_written_at, Message.written_at).join(
                Message, col(Message.id) == col(Draft.message_pk)
            )
        ).all()
    return [(a, b) for a, b in rows]


def by_mail_time(engine: Engine, *, descending: bool) -> list[int]:
    with Session(engine) as session:
        rows = session.exec(
            select(Draft.id, Message.written_at).join(
                Message, col(Message.id) == col(Draft.message_pk)
            )
        ).all()
    ordered = sorted(rows, key=lambda r: (r[1], r[0]), reverse=descending)
    return [int(r[0] or 0) for r in ordered]


def test_a_draft_takes_its_mails_time_and_follows_it(db: Engine) -> None:
    drafts = fill(db)
    assert all(draft == mail and draft is not None for draft, mail in copies(db))
    with session_scope(db) as session:
        message = session.exec(select(Message)).first()
        assert message is not None
        # Changed and not flushed yet when the draft is added: the draft still gets it.
        message.written_at = FIXED_NOW - timedelta(days=9)
        session.add(message)
        session.add(Draft(ticket_id=int(message.ticket_id or 0), message_pk=int(message.id or 0)))
    with session_scope(db) as session:  # the mail is not loaded here: read from the table
        first = session.get(Draft, drafts[0])
        assert first is not None
        session.add(Draft(ticket_id=first.ticket_id, message_pk=first.message_pk))
    assert all(draft == mail for draft, mail in copies(db))
    assert len(copies(db)) == 11


@pytest.mark.parametrize("descending", [False, True], ids=["oldest", "newest"])
@pytest.mark.parametrize("view", [None, "all"])
def test_age_order_is_the_mails_own_time(db: Engine, descending: bool, view: str | None) -> None:
    fill(db)
    expected = by_mail_time(db, descending=descending)
    flt = QueueFilter(sort="age", descending=descending, view=view)
    with Session(db) as session:
        whole = [r.draft_id for r in page_queue(session=session, flt=flt, limit=100)]
        paged = [
            r.draft_id
            for offset in range(0, 9, 4)
            for r in page_queue(session=session, flt=flt, offset=offset, limit=4)
        ]
    assert whole == paged == expected


def drop_new_columns(engine: Engine) -> None:
    """Make `engine`'s database look like one from before the copies and the keys."""
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE draft DROP COLUMN mail_written_at"))
        conn.execute(text("ALTER TABLE analysis DROP COLUMN incident_keys"))


def test_an_old_database_gains_the_copies_and_the_indexes(db: Engine) -> None:
    fill(db)
    before = {
        d: by_mail_time(db, descending=d) for d in (False, True)
    }  # the mails' order, read through the join
    drop_new_columns(db)
    done = upgrade(db)
    assert {"draft.mail_written_at", "analysis.incident_keys"} <= set(done)
    assert all(draft == mail and draft is not None for draft, mail in copies(db))
    names = {str(i["name"]) for i in inspect(db).get_indexes("draft")}
    if db.dialect.name == "postgresql":  # dropping the column took its indexes with it
        assert {"ix_draft_open_by_age", "ix_draft_open_by_ticket"} <= names
        assert {"index ix_draft_open_by_age"} <= set(done)
    assert upgrade(db) == []  # a second start changes nothing
    with Session(db) as session:
        for descending, expected in before.items():
            flt = QueueFilter(sort="age", descending=descending)
            assert [r.draft_id for r in page_queue(session=session, flt=flt)] == expected
