"""After the relay answers: the record of what we sent, its Sent-folder copy, and
recovery of sends whose outcome nobody saw.

Split from the sender runner (`sender.py`), which decides and commits each delivery;
this module keeps the consequences around it:

* `store_outbound` keeps a sent reply as an outbound `Message` (in the same transaction
  as the `sent` state), so the customer's answer and our own echo thread to it;
* `copy_to_sent` APPENDs a copy to the mailbox's IMAP `sent_folder`, best effort and
  after the commit: a failed copy is logged and audited, never retried as a send. It is
  the one outbound code that uses the inbound IMAP login (`gateway.inbound.imap.auth`);
* `recover_uncertain` turns a stale `sending` row, whose sender died, into `uncertain`,
  which no code resends.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from gateway.config import Config, ImapConfig, SenderConfig
from storage.audit import audit
from storage.db import session_scope
from storage.models import Message, MessageState, Outbox, RawMessage, Ticket
from storage.queue import mark_stale_sends_uncertain

log = logging.getLogger("gateway.outbound.sender")


def copy_to_sent(
    engine: Engine, config: Config, row: Outbox, payload: bytes, now: datetime, *, actor: str
) -> None:
    """Best effort, after the commit: a failed copy never un-sends or resends."""
    with Session(engine) as session:
        ticket = session.get(Ticket, row.ticket_id) if row.ticket_id is not None else None
    mailbox = sent_mailbox(config, ticket.mailbox if ticket else None)
    if mailbox is None:
        return
    try:
        append_sent(mailbox, payload, now)
    except Exception as exc:
        log.warning("outbox %s: copy to %s failed: %s", row.id, mailbox.sent_folder, exc)
        with session_scope(engine) as session:
            audit(
                session,
                actor=actor,
                action="outbox.sent_copy_failed",
                entity_type="outbox",
                entity_id=row.id,
                details={"mailbox": mailbox.name, "error": str(exc)[:500]},
            )


def store_outbound(
    session: Session, row: Outbox, payload: bytes, cfg: SenderConfig, *, now: datetime
) -> Message | None:
    """Keep what we sent as an outbound Message, so replies and echoes thread to it."""
    bare = row.message_id.strip().strip("<>")
    key = f"mid:{bare}"
    if session.exec(select(Message.id).where(Message.dedupe_key == key)).first() is not None:
        return None
    digest = hashlib.sha256(payload).hexdigest()
    if session.get(RawMessage, digest) is None:
        session.add(RawMessage(sha256=digest, size=len(payload), data=payload))
        session.flush()
    message = Message(
        dedupe_key=key,
        message_id=bare,
        sha256=digest,
        size=len(payload),
        direction="outbound",
        source="sender",
        envelope_from=cfg.from_address,
        envelope_to=list(row.to_addrs),
        from_addr=cfg.from_address.lower(),
        from_name=cfg.from_name,
        to_addrs=list(row.to_addrs),
        subject=row.subject,
        in_reply_to=row.in_reply_to,
        references=list(row.references),
        received_at=now,
        state=MessageState.SENT,
        ticket_id=row.ticket_id,
        thread_signal="outbound",
    )
    session.add(message)
    return message


def sent_mailbox(config: Config, mailbox: str | None) -> ImapConfig | None:
    """The `[[imap]]` mailbox whose `sent_folder` gets a copy of a reply on `mailbox`.

    Mail that came in by SMTP has no mailbox; it uses the only mailbox with a
    `sent_folder`, if there is exactly one.
    """
    with_sent = [m for m in config.imap if m.sent_folder]
    for candidate in with_sent:
        if candidate.name == mailbox:
            return candidate
    return with_sent[0] if mailbox is None and len(with_sent) == 1 else None


def append_sent(cfg: ImapConfig, payload: bytes, when: datetime) -> None:
    """APPEND `payload` to `cfg.sent_folder` (created if missing), marked \\Seen."""
    from gateway.inbound.imap.auth import close, connect

    client = connect(cfg)
    try:
        if not client.folder_exists(cfg.sent_folder):
            client.create_folder(cfg.sent_folder)
        client.append(cfg.sent_folder, payload, flags=[b"\\Seen"], msg_time=when)
    finally:
        close(client)


def recover_uncertain(engine: Engine, *, now: datetime, stale_after: timedelta) -> int:
    """Stale `sending` rows (their sender died) become `uncertain`; never resent."""
    with session_scope(engine) as session:
        return mark_stale_sends_uncertain(session, cutoff=now - stale_after)
