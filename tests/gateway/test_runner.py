"""Runner loop: abandoned claims come back while the process keeps running."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from freezegun import freeze_time
from sqlalchemy.engine import Engine
from sqlmodel import Session

from gateway.conversation.pipeline import AnalysisRunner, process_message
from gateway.inbound.ingest import ingest
from gateway.runner import RecoveryRunner, run_until_idle
from storage.models import Message
from storage.queue import claim_messages, release_claims

RAW = (
    b"From: c@customer.example\r\nMessage-ID: <r1@x>\r\nSubject: disk full\r\n\r\nOur disk is full."
)


def _state(engine: Engine, pk: int) -> tuple[str, str | None, int]:
    with Session(engine) as session:
        msg = session.get(Message, pk)
        assert msg is not None
        return msg.state, msg.claimed_by, msg.attempts


def test_recovery_runner_hands_back_a_dead_runners_claim(make_config, engine: Engine) -> None:
    pk = ingest(engine, RAW, source="t").message_pk
    with freeze_time(datetime.now(UTC) - timedelta(hours=1)):
        assert claim_messages(engine, worker="deadhost:1:analysis") == [pk]
    config = make_config(kb={"dir": "kb-missing"})
    recovery = RecoveryRunner(engine, stale_after_seconds=600, max_attempts=3, interval=0.0)
    assert recovery.run_once() == 0  # it never keeps the loop busy…
    assert _state(engine, pk)[0] == "received"  # …but the claim is back
    run_until_idle([recovery, AnalysisRunner(config, engine)])
    assert _state(engine, pk)[0] == "drafted"


def test_recovery_waits_for_its_interval(engine: Engine) -> None:
    pk = ingest(engine, RAW, source="t").message_pk
    with freeze_time(datetime.now(UTC) - timedelta(hours=1)):
        claim_messages(engine, worker="deadhost:1:analysis")
    recovery = RecoveryRunner(engine, stale_after_seconds=600, max_attempts=3, interval=3600.0)
    recovery.run_once()
    assert _state(engine, pk)[0] == "analysing"


def test_release_claims_hands_back_only_this_process(engine: Engine) -> None:
    mine = ingest(engine, RAW, source="t").message_pk
    theirs = ingest(engine, RAW.replace(b"r1@x", b"r2@x"), source="t").message_pk
    claim_messages(engine, worker="host:10:analysis", limit=1)
    claim_messages(engine, worker="host:11:analysis", limit=1)
    assert release_claims(engine, worker_prefix="host:10:") == 1
    assert _state(engine, mine) == ("received", None, 0)
    assert _state(engine, theirs)[:2] == ("analysing", "host:11:analysis")


def test_a_late_runner_does_not_touch_a_message_another_runner_owns(
    make_config, engine: Engine
) -> None:
    pk = ingest(engine, RAW, source="t").message_pk
    claim_messages(engine, worker="slow:1:analysis")
    release_claims(engine, worker_prefix="slow:1:")
    claim_messages(engine, worker="fast:2:analysis")
    config = make_config(kb={"dir": "kb-missing"})
    runner = AnalysisRunner(config, engine, worker="slow:1:analysis")
    process_message(runner.ctx, pk, actor="slow:1:analysis")
    assert _state(engine, pk)[:2] == ("analysing", "fast:2:analysis")
