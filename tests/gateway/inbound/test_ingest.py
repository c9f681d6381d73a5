"""Ingest: idempotent, durable, and never blocked by what a header contains."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from gateway import headers as h
from gateway.inbound.facts import header_facts
from gateway.inbound.ingest import IngestItem, ingest, ingest_batch
from storage.models import AuditLog, Message, RawMessage


def _count(engine: Engine, model: Any) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


def test_same_message_id_is_one_message_and_leaves_no_stray_bytes(engine: Engine) -> None:
    first = ingest(engine, b"Message-ID: <a@x>\r\nSubject: one\r\n\r\nbody", source="t")
    again = ingest(engine, b"Message-ID: <a@x>\r\nSubject: one\r\n\r\nbody", source="t")
    # Same Message-ID, different bytes (a resend through another path): still one message,
    # and the second copy's bytes are not stored unreferenced.
    other = ingest(
        engine, b"Message-ID: <a@x>\r\nSubject: one\r\nX-Path: b\r\n\r\nbody", source="t"
    )
    assert not first.duplicate and again.duplicate and other.duplicate
    assert first.message_pk == again.message_pk == other.message_pk
    assert _count(engine, Message) == 1
    assert _count(engine, RawMessage) == 1
    assert _count(engine, AuditLog) == 1


def test_without_message_id_the_content_hash_dedupes(engine: Engine) -> None:
    a = ingest(engine, b"Subject: x\r\n\r\nsame", source="t")
    b = ingest(engine, b"Subject: x\r\n\r\nsame", source="t")
    c = ingest(engine, b"Subject: x\r\n\r\ndifferent", source="t")
    assert a.message_pk == b.message_pk != c.message_pk
    assert a.dedupe_key.startswith("sha:")


def test_eight_bit_bytes_in_id_headers_are_stored_not_refused(engine: Engine) -> None:
    raw = b"Message-ID: <caf\xe9-2@x>\r\nIn-Reply-To: <r\xff@x>\r\nSubject: caf\xe9\r\n\r\nbody"
    result = ingest(engine, raw, source="t")
    assert ingest(engine, raw, source="t").duplicate
    with Session(engine) as session:
        msg = session.get(Message, result.message_pk)
        assert msg is not None
        assert msg.message_id is not None and msg.message_id.startswith("caf")
        assert msg.in_reply_to is not None
        stored = session.get(RawMessage, msg.sha256)
        assert stored is not None and stored.data == raw


def test_unstorable_header_facts_fall_back_to_a_bare_message(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whatever slips past cleaning, the message itself must still be stored.
    monkeypatch.setattr(h, "first_msgid", lambda value: "bad\udcffid" if value else None)
    raw = b"Message-ID: <whatever@x>\r\nSubject: s\r\n\r\nbody"
    result = ingest(engine, raw, source="t")
    assert result.dedupe_key.startswith("sha:")
    with Session(engine) as session:
        msg = session.get(Message, result.message_pk)
        assert msg is not None and msg.message_id is None and msg.state == "received"


def test_batch_mixes_new_duplicates_and_repeats(engine: Engine) -> None:
    ingest(engine, b"Message-ID: <old@x>\r\n\r\nold", source="t")
    items = [
        IngestItem(b"Message-ID: <n1@x>\r\n\r\n1", "t"),
        IngestItem(b"Message-ID: <old@x>\r\n\r\nold", "t"),
        IngestItem(b"Message-ID: <n1@x>\r\n\r\n1", "t"),
        IngestItem(b"Message-ID: <n2@x>\r\n\r\n2", "t"),
    ]
    results = ingest_batch(engine, items)
    assert [r.duplicate for r in results] == [False, True, True, False]
    assert results[0].message_pk == results[2].message_pk
    assert _count(engine, Message) == 3
    assert _count(engine, AuditLog) == 3


def test_concurrent_batches_store_each_message_once(engine: Engine) -> None:
    raws = [f"Message-ID: <c{i}@x>\r\n\r\n{i}".encode() for i in range(40)]
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for start in range(0, 40, 8):
                ingest_batch(engine, [IngestItem(r, "t") for r in raws[start : start + 8]])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _count(engine, Message) == 40


def test_quick_header_scan_agrees_with_the_stdlib() -> None:
    raw = (
        b"Received: from x\r\n\tby y\r\nFrom: =?utf-8?q?J=C3=BCrgen?= <J@Example.COM>\r\n"
        b"To: a@b.example,\r\n C <c@d.example>\r\nSubject: long\r\n folded subject\r\n"
        b"Message-ID:\r\n <folded@x>\r\nReferences: <r1@x>\r\n\t<r2@x>\r\n\r\nbody"
    )
    facts = header_facts(raw)
    key, _digest, mid, summary = facts
    assert mid == "folded@x" and key == "mid:folded@x"
    assert summary["from_addr"] == "j@example.com" and summary["from_name"] == "Jürgen"
    assert summary["to_addrs"] == ["a@b.example", "c@d.example"]
    assert summary["subject"] == "long folded subject"
    assert summary["references"] == ["r1@x", "r2@x"]


def test_a_batch_stores_the_same_rows_as_one_message_at_a_time(engine: Engine) -> None:
    """The batch path converts the columns its rows share once (`Bulk.params_many`);
    what lands in every column, audit rows included, is what `ingest` stores alone."""
    from storage.db import init_db, make_engine

    raws = [
        b"Message-ID: <f1@x>\r\nFrom: A <a@x.example>\r\nSubject: one\r\n\r\n1",
        b"From: b@x.example\r\nTo: c@x.example, d@x.example\r\nReferences: <r@x>\r\n\r\n2",
        b"Message-ID: <f1@x>\r\n\r\nrepeat",
    ]
    items = [IngestItem(r, "imap:m", "s@x.example", ("rcpt@x.example",), "m") for r in raws]
    alone = make_engine("sqlite:///:memory:")
    init_db(alone)
    try:
        batch = ingest_batch(engine, items)
        single = [ingest_batch(alone, [item])[0] for item in items]
        assert [(r.duplicate, r.dedupe_key) for r in batch] == [
            (r.duplicate, r.dedupe_key) for r in single
        ]

        def rows(eng: Engine) -> list[dict[str, Any]]:
            with Session(eng) as session:
                messages = session.exec(select(Message).order_by(col(Message.id))).all()
                audits = session.exec(select(AuditLog).order_by(col(AuditLog.id))).all()
                return [
                    m.model_dump(exclude={"id", "received_at", "written_at"}) for m in messages
                ] + [a.model_dump(exclude={"id", "at", "entity_id"}) for a in audits]

        assert rows(engine) == rows(alone) and len(rows(engine)) == 4
        with Session(engine) as session:
            stored = session.exec(select(Message)).all()
        assert all(m.received_at == m.written_at is not None for m in stored)
        assert stored[1].to_addrs == ["c@x.example", "d@x.example"]
        assert stored[1].envelope_to == ["rcpt@x.example"]
    finally:
        alone.dispose()
