"""Queue search finds the same drafts on SQLite and on PostgreSQL, and PostgreSQL finds
them through its trigram indexes.

PostgreSQL runs search as a union of per-table lookups (storage/review/search.py), SQLite
as one OR over the joined row; both must mean "the term, as a substring, ignoring case,
in the draft's subject or recipient, the customer's subject or address, or the
ticket's signature", among the drafts the rest of the filter keeps. The expectation is
computed here in Python from the rows themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from storage.db import init_db, make_engine, session_scope
from storage.models import Draft, DraftState, Message, Ticket
from storage.review import QueueFilter, count_queue, page_queue
from storage.seed import FIXED_NOW, add_ticket, seed
from tests.support.postgres import pg_bindir

TERMS = ["nordlicht", "NordLicht", "db-prod", "sig-slow", "Unreachable", "50%_off", "io",
         "closed-only-term", "no-such-thing-anywhere"]  # fmt: skip


def _fill(engine: Engine) -> None:
    seed(engine, count=60)
    at = FIXED_NOW - timedelta(hours=1)
    add_ticket(engine, sender="buyer@shop.example", subject="50%_off code fails", body="b",
               received_at=at)  # fmt: skip
    add_ticket(engine, sender="anna@closed-only-term.example", subject="thanks", body="b",
               received_at=at - timedelta(minutes=1), state=DraftState.SENT)  # fmt: skip
    _, draft_id = add_ticket(engine, sender="ops@x.example", subject="Backup", body="b",
                             received_at=at - timedelta(minutes=2))  # fmt: skip
    with session_scope(engine) as session:
        draft = session.get(Draft, draft_id)
        ticket = session.get(Ticket, draft.ticket_id if draft else 0)
        assert ticket is not None
        ticket.signature = "SIG-SLOW-QUERY"
        session.add(ticket)


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'q.sqlite3'}")
        init_db(eng)
    else:
        if pg_bindir() is None:
            pytest.skip("PostgreSQL binaries are not installed")
        eng = request.getfixturevalue("pg_engine")
    _fill(eng)
    yield eng
    if request.param == "sqlite":
        eng.dispose()


def expected(engine: Engine, term: str, flt: QueueFilter) -> set[int]:
    wanted = term.casefold()
    with Session(engine) as session:
        rows = session.exec(
            select(Draft, Message, Ticket)
            .join(Message, Message.id == Draft.message_pk)  # type: ignore[arg-type]
            .join(Ticket, Ticket.id == Draft.ticket_id)  # type: ignore[arg-type]
        ).all()
    return {
        int(d.id or 0)
        for d, m, t in rows
        if (not flt.states or d.state in flt.states)
        and (not flt.intents or d.intent in flt.intents)
        and any(wanted in (v or "").casefold()
                for v in (d.subject, d.to_addr, m.subject, m.from_addr, t.signature))
    }  # fmt: skip


@pytest.mark.parametrize(
    "base",
    [QueueFilter(), QueueFilter(states=()), QueueFilter(intents=("performance", "billing"))],
    ids=["open drafts", "every state", "two intents"],
)
def test_search_finds_exactly_the_matching_drafts(engine: Engine, base: QueueFilter) -> None:
    for term in TERMS:
        flt = QueueFilter(states=base.states, intents=base.intents, search=term)
        want = expected(engine, term, flt)
        with Session(engine) as session:
            rows = page_queue(session=session, flt=flt, limit=1000)
            total = count_queue(session=session, flt=flt)
        assert {r.draft_id for r in rows} == want, term
        assert total == len(want), term
    assert expected(engine, "closed-only-term", QueueFilter()) == set()
    assert expected(engine, "closed-only-term", QueueFilter(states=())) != set()
    assert expected(engine, "50%_off", QueueFilter()) != set()


def _statements(engine: Engine, run: Any) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, _m: Any) -> None:
        seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    return seen


@pytest.mark.postgres
@pytest.mark.skipif(pg_bindir() is None, reason="PostgreSQL binaries are not installed")
def test_postgres_search_can_use_the_trigram_indexes(pg_engine: Engine) -> None:
    _fill(pg_engine)

    def count() -> None:
        with Session(pg_engine) as session:
            count_queue(session=session, flt=QueueFilter(states=(), search="nordlicht"))

    [(statement, params)] = _statements(pg_engine, count)
    with pg_engine.connect() as conn:
        # A few hundred rows are cheaper to read whole: leave the planner only lookups
        # by an index condition, to see which indexes the search's conditions can use.
        for kind in ("seqscan", "indexscan", "indexonlyscan"):
            conn.execute(text(f"SET enable_{kind} = off"))
        raw = conn.connection.driver_connection
        assert raw is not None
        plan = "\n".join(r[0] for r in raw.execute("EXPLAIN " + statement, params))
    for index in ("ix_draft_subject_trgm", "ix_draft_to_addr_trgm", "ix_message_subject_trgm",
                  "ix_message_from_addr_trgm", "ix_ticket_signature_trgm"):  # fmt: skip
        assert index in plan
