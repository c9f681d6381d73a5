"""The one door every message passes: store durably, exactly once, then acknowledge.

Every front door (SMTP, IMAP, the `ingest` command) calls `ingest`, which commits the
raw bytes and a `received` row in one transaction before it returns. Only then may the
caller answer 250 or flag the IMAP message. Ingest is idempotent: the key is the
Message-ID, or the SHA-256 of the raw bytes when there is none, under a unique index,
so two processes racing with the same message still store it once. The SQL it runs is
compiled once per dialect in `gateway.inbound.statements`; the header facts stored
with each message (its key among them) are read in `gateway.inbound.facts`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError, StatementError

from gateway import headers as h
from gateway.inbound import sqlite_accept
from gateway.inbound.facts import EMPTY_SUMMARY, Facts, header_facts
from gateway.inbound.statements import statements
from storage.models import MessageState, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IngestResult:
    message_pk: int
    duplicate: bool
    dedupe_key: str


@dataclass(frozen=True, slots=True)
class IngestItem:
    raw: bytes
    source: str
    envelope_from: str | None = None
    envelope_to: tuple[str, ...] = ()
    mailbox: str | None = None


def ingest(
    engine: Engine,
    raw: bytes,
    *,
    source: str,
    envelope_from: str | None = None,
    envelope_to: Iterable[str] = (),
    mailbox: str | None = None,
) -> IngestResult:
    """Store `raw` durably (or find it already stored) and return its row id.

    Raises only on storage failure; the caller must then NOT acknowledge the message.
    """
    item = IngestItem(raw, source, envelope_from, tuple(envelope_to), mailbox)
    return ingest_batch(engine, [item])[0]


def ingest_batch(engine: Engine, items: list[IngestItem]) -> list[IngestResult]:
    """Store several messages in ONE transaction (one fsync) — group commit.

    Either all are durable when this returns, or it raises and none is. Results are in
    the order of `items`; a message already stored (or repeated within the batch) comes
    back as a duplicate of the stored row.
    """
    return ingest_prepared(engine, prepare_batch(engine.dialect, items))


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A batch with its rows built, ready for `ingest_prepared`.

    Building the rows (driver parameters, see `storage.bulk`) is most of a batch's CPU
    time; done before the transaction, the write lock is held only for the SQL, and a
    caller with a second thread can build the next batch while this one commits.
    """

    items: list[IngestItem]
    facts: list[Facts]
    first: dict[str, int]  # dedupe key -> index of the first item that has it
    raw_rows: dict[str, Any]  # dedupe key -> its raw_message row, as driver parameters
    msg_rows: dict[str, Any]  # dedupe key -> its message row, as driver parameters
    now: datetime
    # dedupe key -> its audit row as driver parameters, all but the message's id
    audit_rows: dict[str, Any] = field(default_factory=dict)


def prepare_batch(dialect: Dialect, items: list[IngestItem]) -> PreparedBatch:
    """The header facts and rows of `items`, for `ingest_prepared`.

    The columns every row of the batch shares (its timestamp, what a new message starts
    with) are converted for the driver once, not once per row (`Bulk.params_many`).
    """
    facts = [header_facts(item.raw) for item in items]
    now = utcnow()
    first: dict[str, int] = {}
    for index, fact in enumerate(facts):
        first.setdefault(fact[0], index)
    if len(items) == 1:  # stored by `_store_one`, which builds its own
        return PreparedBatch(items, facts, first, {}, {}, now)
    st = statements(dialect)
    keys = list(first)
    chosen = [(items[i], facts[i]) for i in first.values()]
    raw_rows = st.put_raw.params_many(
        [{"sha256": fact[1], "size": len(item.raw), "data": item.raw} for item, fact in chosen]
    )
    msg_rows = st.put_msg.params_many(
        [_message_own(item, fact) for item, fact in chosen], _message_shared(now)
    )
    audit_rows = st.put_audit.params_many(
        [_audit_own(item, key) for key, (item, _fact) in zip(keys, chosen, strict=True)],
        _audit_shared(0, now),
    )
    return PreparedBatch(
        items,
        facts,
        first,
        dict(zip(keys, raw_rows, strict=True)),
        dict(zip(keys, msg_rows, strict=True)),
        now,
        dict(zip(keys, audit_rows, strict=True)),
    )


def ingest_prepared(engine: Engine, batch: PreparedBatch) -> list[IngestResult]:
    """`ingest_batch` for a batch prepared already."""
    if len(batch.items) == 1:
        return [_store_one(engine, batch.items[0], batch.facts[0])]
    try:
        return _store(engine, batch)
    except IntegrityError:
        # Another process stored one of these keys between our look-up and our insert.
        # The transaction rolled back; the second pass sees its row and skips it.
        return _store(engine, batch)


def _store(engine: Engine, batch: PreparedBatch) -> list[IngestResult]:
    st = statements(engine.dialect)
    facts = batch.facts
    with engine.begin() as conn:
        found = conn.execute(st.find, {"keys": list(batch.first)}).all()  # type: ignore[arg-type]
        known: dict[str, int] = dict(found)  # type: ignore[arg-type]
        fresh = {key: i for key, i in batch.first.items() if key not in known}
        if fresh:
            conn.exec_driver_sql(st.put_raw.sql, [batch.raw_rows[key] for key in fresh])
            conn.exec_driver_sql(st.put_msg.sql, [batch.msg_rows[key] for key in fresh])
            stored = dict(conn.execute(st.find, {"keys": list(fresh)}).all())  # type: ignore[arg-type]
            conn.exec_driver_sql(
                st.put_audit.sql,
                [
                    st.put_audit.replaced(batch.audit_rows[key], "entity_id", stored[key])
                    for key in fresh
                ],
            )
            known.update(stored)
    return [
        IngestResult(int(known[key]), fresh.get(key) != index, key)
        for index, (key, *_rest) in enumerate(facts)
    ]


def _store_one(engine: Engine, item: IngestItem, fact: Facts) -> IngestResult:
    try:
        return _insert_one(engine, item, fact)
    except (OperationalError, InterfaceError, IntegrityError):
        raise  # the database itself is unwell: the front door must answer 4xx
    except (StatementError, ValueError) as exc:  # UnicodeError is a ValueError
        # Something in the extracted header facts cannot be stored (an encoding the
        # driver refuses, a value out of range). The message itself must not be held
        # back: store it under its content hash with no header summary; the parser
        # reads the raw bytes later anyway.
        log.warning("storing header facts failed (%s); storing the message bare", exc)
        digest = fact[1]
        return _insert_one(engine, item, (f"sha:{digest}", digest, None, dict(EMPTY_SUMMARY)))


def _insert_one(engine: Engine, item: IngestItem, fact: Facts) -> IngestResult:
    st = statements(engine.dialect)
    key, digest, _mid, _ = fact
    now = utcnow()
    raw_row = {"sha256": digest, "size": len(item.raw), "data": item.raw}
    msg_row = _message_row(item, fact, now)
    if engine.dialect.name == "sqlite":
        # Rolled back on FallBack: the same transaction again, with SQLAlchemy's reporting.
        with contextlib.suppress(sqlite_accept.FallBack):
            pk, duplicate = sqlite_accept.insert_one(
                engine, key, raw_row, msg_row, lambda pk: _audit_row(item, key, pk, now)
            )
            return IngestResult(pk, duplicate, key)
    with engine.connect() as conn, conn.begin() as transaction:
        st.put_raw.run_one(conn, raw_row)
        row = st.put_one.run_one(conn, msg_row).first()
        if row is None:
            # Already stored (possibly by another process a moment ago): a duplicate.
            # Roll back so a second copy's bytes are not left behind unreferenced.
            existing = dict(conn.execute(st.find, {"keys": [key]}).all())  # type: ignore[arg-type]
            transaction.rollback()
            return IngestResult(int(existing[key]), True, key)
        st.put_audit.run_one(conn, _audit_row(item, key, int(row[0]), now))
        return IngestResult(int(row[0]), False, key)


def _audit_row(item: IngestItem, key: str, message_pk: int, now: datetime) -> dict[str, Any]:
    return {**_audit_own(item, key), **_audit_shared(message_pk, now)}


def _audit_own(item: IngestItem, key: str) -> dict[str, Any]:
    return {
        "actor": f"ingest:{item.source}"[:200],
        "details": {"dedupe_key": key, "size": len(item.raw), "mailbox": item.mailbox},
    }


def _audit_shared(message_pk: int, now: datetime) -> dict[str, Any]:
    return {
        "at": now,
        "action": "message.received",
        "entity_type": "message",
        "entity_id": message_pk,
        "model_version": None,
    }


def _message_row(item: IngestItem, fact: Facts, now: datetime) -> dict[str, Any]:
    return {**_message_own(item, fact), **_message_shared(now)}


def _message_own(item: IngestItem, fact: Facts) -> dict[str, Any]:
    """The columns of a new message row that differ from message to message."""
    key, digest, mid, summary = fact
    return {
        "dedupe_key": key,
        "message_id": mid,
        "sha256": digest,
        "size": len(item.raw),
        "source": item.source[:200],
        "mailbox": item.mailbox,
        "envelope_from": _reverse_path(item.envelope_from),
        "envelope_to": [h.clean(r) for r in item.envelope_to],
        **summary,
    }


def _message_shared(now: datetime) -> dict[str, Any]:
    """The columns every message row stored at `now` starts with."""
    return {
        "direction": "inbound",
        "received_at": now,
        "written_at": now,
        "state": MessageState.RECEIVED.value,
        "attempts": 0,
        "claimed_by": None,
        "claimed_at": None,
        "error": None,
        "suppression_reason": None,
        "ticket_id": None,
        "thread_signal": None,
        "parsed": None,
    }


def _reverse_path(envelope_from: str | None) -> str | None:
    """The SMTP sender as stored: None when unknown (IMAP, files), `<>` for the null
    reverse path of bounces and auto-replies, which screening must be able to see."""
    if envelope_from is None:
        return None
    return h.clean(envelope_from).strip().strip("<>").strip() or "<>"
