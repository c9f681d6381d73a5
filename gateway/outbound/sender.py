"""The outbound sender: the only code that delivers mail, and only mail a human released.

Each `run_once` claims `pending` outbox rows (compare-and-set to `sending`, committed
before any network I/O), builds the reply with our fixed Message-ID, threading headers,
the `[#ticket]` token and `Auto-Submitted: no`, and hands it to the configured relay
over one SMTP session per run (`RelaySession`), not a new connection per reply. The SMTP
client side (session, transaction, how each reply is classified) lives in gateway/outbound/relay.py.

Delivery guarantee — an outbox row is never sent twice:

* Only `pending` rows are ever claimed, and the claim is committed before the SMTP
  session opens. A row in `sending` is therefore never picked up again by any sender.
* If the process dies (SIGKILL, power loss) after the relay accepted the message but
  before the `sent` commit, the row stays `sending`. Recovery (`recover_uncertain`
  here, and `storage.queue.recover_stale` at start-up) turns a stale `sending` row into
  `uncertain`, which no code resends: a human checks the relay log or the customer's
  thread and explicitly retries or closes it.
* An error whose outcome is ambiguous — the connection dropped or timed out after the
  message body was transmitted — also ends in `uncertain`, not in a retry.
* Errors the relay stated before accepting the body (4xx at MAIL/RCPT/DATA, refused
  connection) are safe to retry and get exponential backoff; 5xx replies mark the row
  `failed` with the server's reply. Any other exception inside a send ends the same
  way: `uncertain` once DATA has begun, otherwise a retry with backoff.

Addresses go on the wire as SMTP can carry them: an internationalised domain as
punycode, and a non-ASCII local part only over a relay that offers SMTPUTF8 (the
message is then serialised with UTF-8 headers); without it the row fails with that
reason before MAIL FROM. Message-ID, In-Reply-To and References are never
RFC 2047-encoded, however long the ids, or mail clients would not thread the reply.

So delivery is at-most-once per outbox row; the price is that a crash inside the small
window between "250 OK" and our commit needs a human decision. The Message-ID is fixed
at release, so even a human-approved resend is recognisably the same message to the
customer's mail client.

After a successful send, a copy may be APPENDed to the mailbox's IMAP `sent_folder`
(best effort, after the commit: a failed copy is logged and audited, never retried as
a send).
"""

from __future__ import annotations

import email.policy
import hashlib
import logging
import os
import socket
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from sqlalchemy import func, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from gateway import headers as h
from gateway.config import Config, ImapConfig, SenderConfig
from gateway.outbound.relay import (
    AMBIGUOUS,
    PERMANENT,
    SENT,
    TEMPORARY,
    Outcome,
    RelaySession,
    _name,
    smtputf8_needed_by,
)

# Re-exported for callers and tests that import them from here.
from gateway.outbound.relay import MAX_PER_SESSION as MAX_PER_SESSION
from gateway.outbound.relay import _tls_context as _tls_context
from storage.audit import audit
from storage.db import session_scope
from storage.models import (
    Draft,
    DraftState,
    Message,
    MessageState,
    Outbox,
    OutboxState,
    RawMessage,
    Ticket,
    utcnow,
)
from storage.queue import check_transition, mark_stale_sends_uncertain

log = logging.getLogger(__name__)


_ID_HEADERS = frozenset({"message-id", "in-reply-to", "references"})


def _fold_ids(name: str, value: str, width: int, linesep: str) -> str | None:
    """`Name: <id> <id>`, folded only between ids; None if not an id header of ASCII ids.

    The stdlib folds In-Reply-To and References as unstructured text and turns an id
    longer than the line (Exchange ids pass 100 characters) into RFC 2047 encoded
    words, which no mail client threads on. An id may make a line long (RFC 5322
    allows 998), but it must stay verbatim.
    """
    if name.lower() not in _ID_HEADERS:
        return None
    ids = str(value).split()
    if not ids or not all(i.isascii() for i in ids):
        return None
    lines = [f"{name}: {ids[0]}"]
    for msgid in ids[1:]:
        if len(lines[-1]) + 1 + len(msgid) > width:
            lines.append("")
        lines[-1] += f" {msgid}"
    return linesep.join(lines) + linesep


class WirePolicy(email.policy.EmailPolicy):
    """`email.policy.SMTP`, except that message-id headers are folded by `_fold_ids`."""

    def fold(self, name: str, value: str) -> str:
        folded = _fold_ids(name, value, self.max_line_length or 998, self.linesep)
        return folded if folded is not None else super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        folded = _fold_ids(name, value, self.max_line_length or 998, self.linesep)
        return folded.encode("ascii") if folded is not None else super().fold_binary(name, value)


WIRE = WirePolicy(linesep="\r\n")
# RFC 6532: with SMTPUTF8 the headers carry UTF-8 as is (addresses cannot be encoded).
WIRE_UTF8 = WIRE.clone(utf8=True)


def bracketed(msgid: str) -> str:
    bare = msgid.strip().strip("<>")
    return f"<{bare}>"


def backoff(attempts: int, cfg: SenderConfig) -> timedelta:
    """Exponential: base, 2·base, 4·base … capped at backoff_max_seconds."""
    seconds = cfg.backoff_base_seconds * (2 ** max(0, attempts - 1))
    return timedelta(seconds=min(cfg.backoff_max_seconds, seconds))


def signature(cfg: SenderConfig, rep_name: str) -> str:
    if not cfg.signature:
        return ""
    return cfg.signature.replace("{rep_name}", rep_name).replace("{from_name}", cfg.from_name)


def envelope_address(addr: str) -> str:
    """`addr` as SMTP carries it: an internationalised domain becomes punycode.

    A non-ASCII local part has no ASCII form; only a relay offering SMTPUTF8 takes it.
    """
    local, at, domain = h.clean(addr).rpartition("@")
    if not at or domain.isascii():
        return f"{local}{at}{domain}"
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(f"{domain!r} is not a valid internationalised domain name") from exc
    return f"{local}@{ascii_domain}"


def envelope(row: Outbox, cfg: SenderConfig) -> tuple[str, list[str]]:
    """Envelope sender and recipients of an outbox row, as they go on the wire."""
    return envelope_address(cfg.from_address), [envelope_address(a) for a in row.to_addrs]


def build_message(row: Outbox, cfg: SenderConfig, *, now: datetime) -> EmailMessage:
    """The RFC 5322 message for an outbox row; `as_bytes()` gives it exactly as sent."""
    sender, rcpts = envelope(row, cfg)
    utf8 = smtputf8_needed_by(sender, rcpts) is not None
    msg = EmailMessage(policy=WIRE_UTF8 if utf8 else WIRE)
    # Under SMTPUTF8 the customer sees addresses as written; otherwise in ASCII form,
    # since an address in an encoded word is no address at all.
    shown_from = h.clean(cfg.from_address) if utf8 else sender
    local, at, domain = shown_from.rpartition("@")
    if not at:
        local, domain = domain, ""
    msg["From"] = Address(display_name=cfg.from_name, username=local, domain=domain)
    msg["To"] = ", ".join([h.clean(a) for a in row.to_addrs] if utf8 else rcpts)
    subject = h.clean(row.subject)
    if row.ticket_id is not None and f"[#{row.ticket_id}]" not in subject:
        subject = f"{subject} [#{row.ticket_id}]".strip()
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = bracketed(row.message_id)
    if row.in_reply_to:
        msg["In-Reply-To"] = bracketed(row.in_reply_to)
    refs = [bracketed(r) for r in row.references if r]
    if row.in_reply_to and bracketed(row.in_reply_to) not in refs:
        refs.append(bracketed(row.in_reply_to))
    if refs:
        msg["References"] = " ".join(refs)
    # RFC 3834: a human wrote this, so auto-responders may answer it once.
    msg["Auto-Submitted"] = "no"
    body = row.body.rstrip("\n")
    sig = signature(cfg, row.released_by)
    text = f"{body}\n\n{sig}\n" if sig else f"{body}\n"
    # Quoted-printable keeps UTF-8 intact and every line under the SMTP limit.
    msg.set_content(text, charset="utf-8", cte="quoted-printable")
    return msg


class SenderRunner:
    """Claims approved outbox rows and delivers them; see the module docstring."""

    def __init__(self, config: Config, engine: Engine, *, worker: str | None = None) -> None:
        self.name = "sender"
        self.config = config
        self.engine = engine
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}:sender"

    @property
    def cfg(self) -> SenderConfig:
        return self.config.sender

    def run_once(self, now: datetime | None = None) -> int:
        now = now or utcnow()
        stale = timedelta(seconds=self.config.runner.stale_after_seconds)
        recover_uncertain(self.engine, now=now, stale_after=stale)
        budget = min(self.config.runner.batch_size, self._budget(now))
        if budget <= 0:
            return 0
        handled = 0
        # One claim per send, so a claim's age is the age of its own delivery attempt
        # and recovery never mistakes a row still waiting in a batch for a dead sender.
        # The relay session is shared by the run's sends and closed when it ends.
        with RelaySession(self.cfg) as relay:
            while handled < budget:
                row_id = self._claim_one(now)
                if row_id is None:
                    break
                self._send_one(row_id, relay)
                handled += 1
        return handled

    def _budget(self, now: datetime) -> int:
        """How many more may go out in the rolling minute (`max_per_minute`)."""
        with Session(self.engine) as session:
            recent = session.exec(
                select(func.count())
                .select_from(Outbox)
                .where(col(Outbox.sent_at) >= now - timedelta(minutes=1))
            ).one()
        return self.cfg.max_per_minute - int(recent)

    def _claim_one(self, now: datetime) -> int | None:
        """Compare-and-set the oldest due `pending` row to `sending`; commit; return its id."""
        with session_scope(self.engine) as session:
            due = session.exec(
                select(Outbox.id)
                .where(Outbox.state == OutboxState.PENDING)
                .where(
                    (col(Outbox.next_attempt_at).is_(None)) | (col(Outbox.next_attempt_at) <= now)
                )
                .order_by(col(Outbox.id))
                .limit(5)
            ).all()
            for row_id in due:
                result = session.execute(
                    update(Outbox)
                    .where(col(Outbox.id) == row_id, col(Outbox.state) == OutboxState.PENDING)
                    .values(
                        state=OutboxState.SENDING,
                        claimed_by=self.worker,
                        claimed_at=max(now, utcnow()),
                        attempts=Outbox.attempts + 1,  # type: ignore[operator]
                    )
                )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    return int(row_id or 0)
        return None

    def _send_one(self, row_id: int, relay: RelaySession) -> None:
        with Session(self.engine, expire_on_commit=False) as session:
            row = session.get(Outbox, row_id)
        if row is None or row.state != OutboxState.SENDING or row.claimed_by != self.worker:
            return
        if not row.released_by.strip() or row.released_at is None:
            # The human gate: no release record, no delivery. Never expected to happen.
            self._finish(row_id, Outcome(PERMANENT, "no human release record; not sent"))
            return
        now = utcnow()
        try:
            sender, rcpts = envelope(row, self.cfg)
            payload = build_message(row, self.cfg, now=now).as_bytes()
        except Exception as exc:  # nothing was sent: a clear failure, not a stuck claim
            self._finish(row_id, Outcome(PERMANENT, f"cannot build the message: {_name(exc)}"))
            return
        outcome = relay.deliver(payload, sender, rcpts)
        log.info("outbox %s: %s %s", row_id, outcome.kind, outcome.detail[:200])
        # A SIGKILL here leaves the row `sending`; recovery makes it `uncertain`.
        self._finish(row_id, outcome, payload=payload, now=now)
        if outcome.kind == SENT:
            self._copy_to_sent(row, payload, now)

    def _copy_to_sent(self, row: Outbox, payload: bytes, now: datetime) -> None:
        """Best effort, after the commit: a failed copy never un-sends or resends."""
        with Session(self.engine) as session:
            ticket = session.get(Ticket, row.ticket_id) if row.ticket_id is not None else None
        mailbox = sent_mailbox(self.config, ticket.mailbox if ticket else None)
        if mailbox is None:
            return
        try:
            append_sent(mailbox, payload, now)
        except Exception as exc:
            log.warning("outbox %s: copy to %s failed: %s", row.id, mailbox.sent_folder, exc)
            with session_scope(self.engine) as session:
                audit(
                    session,
                    actor=self.worker,
                    action="outbox.sent_copy_failed",
                    entity_type="outbox",
                    entity_id=row.id,
                    details={"mailbox": mailbox.name, "error": str(exc)[:500]},
                )

    def _finish(
        self,
        row_id: int,
        outcome: Outcome,
        *,
        payload: bytes = b"",
        now: datetime | None = None,
    ) -> None:
        now = now or utcnow()
        with session_scope(self.engine) as session:
            row = session.get(Outbox, row_id)
            if row is None or row.state != OutboxState.SENDING:
                return
            old = row.state
            row.claimed_by = None
            row.claimed_at = None
            if outcome.kind == SENT:
                self._mark_sent(session, row, outcome, payload, now)
            elif outcome.kind == AMBIGUOUS:
                row.state = OutboxState.UNCERTAIN
                row.last_error = outcome.detail
            elif outcome.kind == TEMPORARY and row.attempts < self.cfg.max_attempts:
                row.state = OutboxState.PENDING
                row.next_attempt_at = now + backoff(row.attempts, self.cfg)
                row.last_error = f"attempt {row.attempts}: {outcome.detail}"
            else:
                row.state = OutboxState.FAILED
                gave_up = outcome.kind == TEMPORARY
                prefix = f"gave up after {row.attempts} attempts: " if gave_up else ""
                row.last_error = f"{prefix}{outcome.detail}"
                _set_draft(session, row.draft_id, DraftState.FAILED)
            session.add(row)
            audit(
                session,
                actor=self.worker,
                action=f"outbox.{row.state}",
                entity_type="outbox",
                entity_id=row.id,
                details={"from": old, "attempt": row.attempts, "detail": outcome.detail[:500]},
            )

    def _mark_sent(
        self, session: Session, row: Outbox, outcome: Outcome, payload: bytes, now: datetime
    ) -> None:
        row.state = OutboxState.SENT
        row.sent_at = now
        row.last_error = f"refused: {', '.join(outcome.refused)}" if outcome.refused else None
        draft = _set_draft(session, row.draft_id, DraftState.SENT)
        if draft is not None:
            inbound = session.get(Message, draft.message_pk)
            if inbound is not None and inbound.state == MessageState.APPROVED:
                check_transition(inbound.state, MessageState.SENT)
                inbound.state = MessageState.SENT
                session.add(inbound)
        store_outbound(session, row, payload, self.cfg, now=now)


def _set_draft(session: Session, draft_id: int | None, state: str) -> Draft | None:
    if draft_id is None:
        return None
    draft = session.get(Draft, draft_id)
    if draft is not None and draft.state in (DraftState.APPROVED, DraftState.SENT):
        draft.state = state
        draft.updated_at = utcnow()
        session.add(draft)
    return draft


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
