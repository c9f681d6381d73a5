"""The one door every message passes: store durably, exactly once, then acknowledge.

Every front door (SMTP, IMAP, the `ingest` command) calls `ingest`, which commits the
raw bytes and a `received` row in one transaction before it returns. Only then may the
caller answer 250 or flag the IMAP message. Ingest is idempotent: the key is the
Message-ID, or the SHA-256 of the raw bytes when there is none, under a unique index,
so two processes racing with the same message still store it once.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from gateway import headers as h
from storage.audit import audit
from storage.models import Message, MessageState, RawMessage, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IngestResult:
    message_pk: int
    duplicate: bool
    dedupe_key: str


def dedupe_key_for(raw: bytes) -> tuple[str, str, str | None]:
    """(dedupe key, sha256 hex, message-id or None) for raw bytes."""
    digest = hashlib.sha256(raw).hexdigest()
    try:
        msg = h.parse_headers(raw)
        mid = h.first_msgid(msg.get("Message-ID"))
    except Exception:  # a header block the stdlib cannot read still gets stored
        mid = None
    key = f"mid:{mid}" if mid else f"sha:{digest}"
    return key[:1024], digest, mid


def _find(session: Session, key: str) -> Message | None:
    return session.exec(select(Message).where(Message.dedupe_key == key)).first()


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
    key, digest, mid = dedupe_key_for(raw)
    summary = _summary(raw)
    with Session(engine, expire_on_commit=False) as session:
        existing = _find(session, key)
        if existing is not None:
            session.rollback()
            return IngestResult(int(existing.id or 0), True, key)
        if session.get(RawMessage, digest) is None:
            session.add(RawMessage(sha256=digest, size=len(raw), data=raw))
            # No ORM relationship orders the inserts, so the blob goes first explicitly.
            session.flush()
        message = Message(
            dedupe_key=key,
            message_id=mid,
            sha256=digest,
            size=len(raw),
            direction="inbound",
            source=source[:200],
            mailbox=mailbox,
            envelope_from=h.clean(envelope_from) or None,
            envelope_to=[h.clean(r) for r in envelope_to],
            received_at=utcnow(),
            state=MessageState.RECEIVED,
            **summary,
        )
        try:
            session.add(message)
            session.flush()
            audit(
                session,
                actor=f"ingest:{source}"[:200],
                action="message.received",
                entity_type="message",
                entity_id=message.id,
                details={"dedupe_key": key, "size": len(raw), "mailbox": mailbox},
            )
            session.commit()
        except IntegrityError:
            # Another process stored the same message between our check and insert.
            session.rollback()
            again = _find(session, key)
            if again is None:
                raise
            return IngestResult(int(again.id or 0), True, key)
        return IngestResult(int(message.id or 0), False, key)


def _summary(raw: bytes) -> dict[str, object]:
    """Cheap header facts for listing before the full parse runs; never raises."""
    try:
        msg = h.parse_headers(raw)
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
        return {}
