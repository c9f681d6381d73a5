"""The one door every message passes: store durably, exactly once, then acknowledge.

Every front door (SMTP, IMAP, the `ingest` command) calls `ingest`, which commits the
raw bytes and a `received` row in one transaction before it returns. Only then may the
caller answer 250 or flag the IMAP message. Ingest is idempotent: the key is the
Message-ID, or the SHA-256 of the raw bytes when there is none, under a unique index,
so two processes racing with the same message still store it once.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import Message as EmailMessage
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine

from gateway import headers as h
from storage.models import AuditLog, Message, MessageState, RawMessage, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IngestResult:
    message_pk: int
    duplicate: bool
    dedupe_key: str


def dedupe_key_for(raw: bytes) -> tuple[str, str, str | None]:
    """(dedupe key, sha256 hex, message-id or None) for raw bytes."""
    key, digest, mid, _ = _facts(raw)
    return key, digest, mid


@functools.cache
def _statements(dialect: str) -> tuple[Any, Any, Any, Any]:
    """Statements built once per dialect; executed with parameter dicts.

    Building `.values(...)` per call costs more than the SQLite commit itself, so the
    accept path reuses compiled statements (INSERT … ON CONFLICT DO NOTHING works on
    both SQLite and PostgreSQL).
    """
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    raw_t = RawMessage.__table__  # type: ignore[attr-defined]
    msg_t = Message.__table__  # type: ignore[attr-defined]
    audit_t = AuditLog.__table__  # type: ignore[attr-defined]
    put_raw = insert(raw_t).on_conflict_do_nothing(index_elements=["sha256"])
    put_msg = (
        insert(msg_t).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(msg_t.c.id)
    )
    find = select(msg_t.c.id).where(msg_t.c.dedupe_key == bindparam("key"))
    return put_raw, put_msg, find, audit_t.insert()


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

    Either all are durable when this returns, or it raises and none is.
    """
    put_raw, put_msg, find, put_audit = _statements(engine.dialect.name)
    results: list[IngestResult] = []
    with engine.begin() as conn:
        for item in items:
            raw = item.raw
            key, digest, mid, summary = _facts(raw)
            now = utcnow()
            conn.execute(put_raw, {"sha256": digest, "size": len(raw), "data": raw})
            row = conn.execute(
                put_msg,
                {
                    "dedupe_key": key,
                    "message_id": mid,
                    "sha256": digest,
                    "size": len(raw),
                    "direction": "inbound",
                    "source": item.source[:200],
                    "mailbox": item.mailbox,
                    "envelope_from": h.clean(item.envelope_from) or None,
                    "envelope_to": [h.clean(r) for r in item.envelope_to],
                    "received_at": now,
                    "state": MessageState.RECEIVED.value,
                    "attempts": 0,
                    **summary,
                },
            ).first()
            if row is None:
                # Already stored (possibly by another process a moment ago): a duplicate.
                existing = int(conn.execute(find, {"key": key}).scalar_one())
                results.append(IngestResult(existing, True, key))
                continue
            message_pk = int(row[0])
            conn.execute(
                put_audit,
                {
                    "at": now,
                    "actor": f"ingest:{item.source}"[:200],
                    "action": "message.received",
                    "entity_type": "message",
                    "entity_id": message_pk,
                    "details": {"dedupe_key": key, "size": len(raw), "mailbox": item.mailbox},
                    "model_version": None,
                },
            )
            results.append(IngestResult(message_pk, False, key))
    return results


_EMPTY_SUMMARY: dict[str, Any] = {
    "from_addr": None,
    "from_name": None,
    "to_addrs": [],
    "subject": None,
    "in_reply_to": None,
    "references": [],
}


def _facts(raw: bytes) -> tuple[str, str, str | None, dict[str, Any]]:
    """Dedupe key, digest, Message-ID and a cheap header summary, from one header parse."""
    digest = hashlib.sha256(raw).hexdigest()
    try:
        msg = h.parse_headers(raw)
    except Exception:  # a header block the stdlib cannot read still gets stored
        return f"sha:{digest}", digest, None, dict(_EMPTY_SUMMARY)
    mid = h.first_msgid(msg.get("Message-ID"))
    key = (f"mid:{mid}" if mid else f"sha:{digest}")[:1024]
    return key, digest, mid, _summary(msg)


def _summary(msg: EmailMessage) -> dict[str, Any]:
    """Cheap header facts for listing before the full parse runs; never raises."""
    try:
        name, addr = h.address(msg, "From")
        return {
            "from_addr": addr or None,
            "from_name": name or None,
            "to_addrs": h.addresses(msg, "To")[:100],
            "subject": h.decoded(msg, "Subject")[:2000] or None,
            "in_reply_to": h.first_msgid(msg.get("In-Reply-To")),
            "references": h.message_ids(msg.get("References"))[:100],
        }
    except Exception as exc:
        log.warning("header summary failed: %s", exc)
        return dict(_EMPTY_SUMMARY)
