"""What a dead worker held goes back: messages to the queue (the attempt counted, shunted
at the limit), a delivery in flight to `uncertain`; other processes' claims stay put.
And the supervisor's table: one row per slot and host, replaced, forgotten per host."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session

from gateway.inbound.ingest import ingest
from storage.db import session_scope
from storage.models import Message, Outbox, OutboxState
from storage.queue import claim_messages
from storage.workers import (
    WorkerProcess,
    forget_host,
    list_workers,
    reclaim_dead,
    record_worker,
)
from tests.support.relay import released


def _raw(n: int) -> bytes:
    return f"Message-ID: <w{n}@x>\r\nSubject: s{n}\r\n\r\nbody {n}".encode()


def _message(engine: Engine, pk: int) -> Message:
    with Session(engine) as session:
        msg = session.get(Message, pk)
        assert msg is not None
        return msg


def test_a_dead_workers_claims_come_back_counted(engine: Engine) -> None:
    dead = ingest(engine, _raw(1), source="t").message_pk
    poisonous = ingest(engine, _raw(2), source="t").message_pk
    alive = ingest(engine, _raw(3), source="t").message_pk
    assert claim_messages(engine, worker="h:10:analysis", limit=1) == [dead]
    assert claim_messages(engine, worker="h:10:analysis", limit=1) == [poisonous]
    with session_scope(engine) as session:
        row = session.get(Message, poisonous)
        assert row is not None
        row.attempts = 3  # it has killed its worker twice before
    assert claim_messages(engine, worker="h:11:analysis", limit=1) == [alive]

    assert reclaim_dead(engine, worker_prefix="h:10:", max_attempts=3) == (1, 1, 0)
    back = _message(engine, dead)
    assert (back.state, back.claimed_by, back.attempts) == ("received", None, 1)
    shunted = _message(engine, poisonous)
    assert shunted.state == "shunted" and "h:10:analysis died" in (shunted.error or "")
    assert _message(engine, alive).claimed_by == "h:11:analysis"


def test_a_delivery_in_flight_becomes_uncertain_never_pending(engine: Engine) -> None:
    outbox_id = released(engine)
    with session_scope(engine) as session:
        row = session.get(Outbox, outbox_id)
        assert row is not None
        row.state, row.claimed_by = OutboxState.SENDING, "h:12:sender"
    assert reclaim_dead(engine, worker_prefix="h:12:", max_attempts=3) == (0, 0, 1)
    with Session(engine) as session:
        row = session.get(Outbox, outbox_id)
        assert row is not None
        assert row.state == OutboxState.UNCERTAIN
        assert "not resent" in (row.last_error or "")


def test_worker_rows_are_replaced_and_forgotten_per_host(engine: Engine) -> None:
    record_worker(engine, WorkerProcess(host="a", name="analysis-1", role="analysis", pid=1))
    record_worker(engine, WorkerProcess(host="b", name="analysis-1", role="analysis", pid=2))
    record_worker(
        engine, WorkerProcess(host="a", name="analysis-1", role="analysis", pid=3, restarts=1)
    )
    assert [(w.host, w.pid, w.restarts) for w in list_workers(engine)] == [
        ("a", 3, 1),
        ("b", 2, 0),
    ]
    forget_host(engine, host="a")
    assert [w.host for w in list_workers(engine)] == ["b"]
