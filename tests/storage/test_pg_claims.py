"""Claims on PostgreSQL skip rows another claimer holds instead of waiting for them.

Several hosts claim from one queue; a claimer must never queue behind another's
uncommitted claim (it would wait out that host's whole batch) nor take its rows.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from gateway.inbound.ingest import ingest
from storage.models import Message
from storage.queue import claim_messages
from tests.support.postgres import pg_bindir

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(pg_bindir() is None, reason="PostgreSQL binaries are not installed"),
]


def _ingest(engine: Engine, count: int) -> list[int]:
    return [
        ingest(engine, f"Message-ID: <held{i}@x>\r\n\r\nb".encode(), source="t").message_pk
        for i in range(count)
    ]


def test_claim_skips_rows_locked_by_an_unfinished_claim(pg_engine: Engine) -> None:
    ids = _ingest(pg_engine, 10)
    got: list[int] = []
    with pg_engine.connect() as other:
        # Another host is in the middle of claiming the five oldest rows.
        other.execute(
            text("SELECT id FROM message ORDER BY id LIMIT 5 FOR UPDATE"),
        ).all()
        worker = threading.Thread(
            target=lambda: got.extend(claim_messages(pg_engine, worker="b", limit=5))
        )
        worker.start()
        worker.join(timeout=10)
        finished = not worker.is_alive()
        other.rollback()
    worker.join(timeout=10)
    assert finished, "the claim waited for another claimer's lock"
    assert got == ids[5:]


def test_claims_come_back_oldest_first_and_respect_the_limit(pg_engine: Engine) -> None:
    ids = _ingest(pg_engine, 7)
    assert claim_messages(pg_engine, worker="a", limit=3) == ids[:3]
    assert claim_messages(pg_engine, worker="b", limit=10) == ids[3:]
    assert claim_messages(pg_engine, worker="c", limit=10) == []
    with Session(pg_engine) as session:
        rows = session.exec(select(Message).order_by(Message.id)).all()  # type: ignore[arg-type]
    assert [(m.claimed_by, m.attempts, m.state) for m in rows] == (
        [("a", 1, "analysing")] * 3 + [("b", 1, "analysing")] * 4
    )
