"""Queue claims, transitions and stale-claim recovery on a real SQLite file."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from gateway.inbound.ingest import ingest
from storage.db import session_scope
from storage.models import AuditLog, Message, MessageState, Outbox, OutboxState
from storage.queue import (
    InvalidTransition,
    check_transition,
    claim_messages,
    recover_stale,
    requeue,
    set_state,
    shunt,
)


def _store(engine: Engine, n: int) -> list[int]:
    return [
        ingest(
            engine, f"Message-ID: <q{i}@x>\r\nSubject: {i}\r\n\r\nbody".encode(), source="t"
        ).message_pk
        for i in range(n)
    ]


def test_claims_are_exclusive_across_threads(engine: Engine) -> None:
    ids = _store(engine, 60)
    results: list[list[int]] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        mine: list[int] = []
        while got := claim_messages(engine, worker=name, limit=5):
            mine.extend(got)
        with lock:
            results.append(mine)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [i for r in results for i in r]
    assert sorted(claimed) == sorted(ids), "every message claimed exactly once"
    with Session(engine) as session:
        states = set(session.exec(select(Message.state)).all())
    assert states == {MessageState.ANALYSING}


def test_transitions_are_validated() -> None:
    check_transition("received", "analysing")
    check_transition("analysing", "drafted")
    with pytest.raises(InvalidTransition):
        check_transition("received", "sent")
    with pytest.raises(InvalidTransition):
        check_transition("sent", "received")


def test_set_state_writes_audit(engine: Engine) -> None:
    (pk,) = _store(engine, 1)
    claim_messages(engine, worker="w")
    with session_scope(engine) as session:
        msg = session.get(Message, pk)
        assert msg is not None
        set_state(session, msg, MessageState.SUPPRESSED, actor="screen", reason="auto-reply")
    with Session(engine) as session:
        msg = session.get(Message, pk)
        assert msg is not None and msg.suppression_reason == "auto-reply"
        audit = session.exec(select(AuditLog).where(AuditLog.action == "message.suppressed")).one()
    assert audit.actor == "screen" and audit.details["reason"] == "auto-reply"


def test_stale_claims_are_recovered_then_shunted_after_max_attempts(engine: Engine) -> None:
    (pk,) = _store(engine, 1)
    start = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    for attempt in range(1, 4):
        with freeze_time(start + timedelta(hours=attempt)):
            assert claim_messages(engine, worker=f"dead-{attempt}") == [pk]
        # Not yet stale five minutes later…
        with freeze_time(start + timedelta(hours=attempt, minutes=5)):
            assert recover_stale(engine, stale_after=timedelta(minutes=10), max_attempts=3) == (
                0,
                0,
            )
        # …but stale after the timeout: requeued twice, then shunted on the third death.
        with freeze_time(start + timedelta(hours=attempt, minutes=11)):
            result = recover_stale(engine, stale_after=timedelta(minutes=10), max_attempts=3)
        with Session(engine) as session:
            msg = session.get(Message, pk)
            assert msg is not None
        if attempt < 3:
            assert result == (1, 0)
            assert msg.state == MessageState.RECEIVED and msg.claimed_by is None
        else:
            assert result == (0, 1)
            assert msg.state == MessageState.SHUNTED
            assert "3 attempts" in (msg.error or "")


def test_shunt_and_requeue(engine: Engine) -> None:
    (pk,) = _store(engine, 1)
    claim_messages(engine, worker="w")
    shunt(engine, pk, actor="w", reason="parse: boom")
    with Session(engine) as session:
        msg = session.get(Message, pk)
        assert msg is not None and msg.state == "shunted" and msg.error == "parse: boom"
    assert requeue(engine, [pk], actor="alice") == 1
    with Session(engine) as session:
        msg = session.get(Message, pk)
        assert msg is not None and msg.state == "received" and msg.error is None
    assert claim_messages(engine, worker="w2") == [pk]


def test_stale_sending_outbox_row_becomes_uncertain_not_resent(engine: Engine) -> None:
    old = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    with session_scope(engine) as session:
        row = Outbox(
            message_id="<sg-1@example.com>",
            to_addrs=["c@customer.example"],
            released_by="alice",
            state=OutboxState.SENDING,
            claimed_by="sender-1",
            claimed_at=old,
        )
        session.add(row)
    recover_stale(
        engine, stale_after=timedelta(minutes=10), max_attempts=3, now=old + timedelta(hours=1)
    )
    with Session(engine) as session:
        row2 = session.exec(select(Outbox)).one()
    assert row2.state == OutboxState.UNCERTAIN
    assert "not resent" in (row2.last_error or "")


def test_timestamps_come_back_timezone_aware(engine: Engine) -> None:
    (pk,) = _store(engine, 1)
    with Session(engine) as session:
        msg = session.get(Message, pk)
        assert msg is not None
    assert msg.received_at.tzinfo is not None
    assert msg.received_at.utcoffset() == timedelta(0)
