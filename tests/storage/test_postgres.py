"""The same storage code on a real PostgreSQL: ingest, dedupe, claims, pipeline, status."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from gateway.cli.mail import export_rows
from gateway.cli.status import collect_status
from gateway.config import parse_config
from gateway.conversation.pipeline import AnalysisRunner
from gateway.inbound.ingest import ingest
from gateway.runner import run_until_idle
from storage.models import Message
from storage.queue import claim_messages
from tests.support.postgres import pg_bindir

SAMPLES = Path(__file__).resolve().parents[2] / "gateway" / "samples"

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(pg_bindir() is None, reason="PostgreSQL binaries are not installed"),
]


def test_ingest_is_idempotent_under_concurrency(pg_engine: Engine) -> None:
    raw = b"Message-ID: <pg-race@x>\r\nSubject: race\r\nFrom: a@b.example\r\n\r\nbody"
    results = []
    lock = threading.Lock()

    def worker() -> None:
        r = ingest(pg_engine, raw, source="t")
        with lock:
            results.append(r)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r.message_pk for r in results}) == 1
    assert sum(not r.duplicate for r in results) == 1
    with Session(pg_engine) as session:
        assert len(session.exec(select(Message)).all()) == 1


def test_claims_are_exclusive(pg_engine: Engine) -> None:
    ids = [
        ingest(pg_engine, f"Message-ID: <pg{i}@x>\r\n\r\nb".encode(), source="t").message_pk
        for i in range(40)
    ]
    got: list[int] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while batch := claim_messages(pg_engine, worker=name, limit=3):
            with lock:
                got.extend(batch)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == sorted(ids)


def test_pipeline_status_and_export_on_postgres(
    pg_engine: Engine, pg_url: str, tmp_path: Path
) -> None:
    config = parse_config({"storage": {"url": pg_url}}, base_dir=tmp_path)
    for path in sorted(SAMPLES.glob("*.eml")):
        ingest(pg_engine, path.read_bytes(), source="file")
    run_until_idle([AnalysisRunner(config, pg_engine)])
    status = collect_status(pg_engine)
    assert status["total"] == len(list(SAMPLES.glob("*.eml")))
    assert status["messages"].get("received", 0) == 0
    assert status["messages"].get("shunted", 0) == 0
    rows = list(export_rows(pg_engine))
    assert all(r["received_at"].endswith("+00:00") for r in rows)


def test_review_release_and_send_on_postgres(
    pg_engine: Engine, pg_url: str, tmp_path: Path
) -> None:
    """The rep's side on PostgreSQL: page the queue, edit, release, and the sender delivers."""
    from aiosmtpd.controller import Controller

    from gateway.outbound.sender import SenderRunner
    from storage.db import session_scope
    from storage.models import Draft, Outbox
    from storage.review import QueueFilter, count_queue, page_queue, release, save_draft
    from tests.support.net import free_port

    received: list[bytes] = []

    class Sink:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            received.append(envelope.content)  # type: ignore[attr-defined]
            return "250 OK"

    port = free_port()
    sink = Controller(Sink(), hostname="127.0.0.1", port=port)
    sink.start()
    try:
        config = parse_config(
            {
                "storage": {"url": pg_url},
                "kb": {"dir": str(SAMPLES.parents[1] / "kb")},
                "sender": {"enabled": True, "host": "127.0.0.1", "port": port},
            },
            base_dir=tmp_path,
        )
        ingest(pg_engine, (SAMPLES / "02.eml").read_bytes(), source="file")
        ingest(pg_engine, (SAMPLES / "06.eml").read_bytes(), source="file")
        run_until_idle([AnalysisRunner(config, pg_engine)])
        with Session(pg_engine) as session:
            assert count_queue(session=session) == 2
            rows = page_queue(session=session, flt=QueueFilter(search="phone"), limit=10)
            assert [r.sender for r in rows] == ["tom.becker@northwind.io"]
            draft = session.get(Draft, rows[0].draft_id)
            assert draft is not None
        with session_scope(pg_engine) as session:
            save_draft(
                session=session,
                draft_id=int(draft.id or 0),
                body="Hi Tom, MFA is reset; enrol a new device.",
                expected_version=draft.version,
                actor="alice",
            )
        release(
            engine=pg_engine,
            draft_ids=[int(draft.id or 0)],
            actor="alice",
            from_address="support@example.com",
        )
        assert SenderRunner(config, pg_engine).run_once() == 1
        assert SenderRunner(config, pg_engine).run_once() == 0  # never twice
        with Session(pg_engine) as session:
            row = session.exec(select(Outbox)).one()
        assert row.state == "sent" and row.released_by == "alice"
        assert len(received) == 1 and b"MFA is reset" in received[0]
    finally:
        sink.stop()
