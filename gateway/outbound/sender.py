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
  here, via `gateway/outbound/sent.py`, and `storage.queue.recover_stale` at start-up)
  turns a stale `sending` row into `uncertain`, which no code resends: a human checks
  the relay log or the customer's thread and explicitly retries or closes it.
* An error whose outcome is ambiguous — the connection dropped or timed out after the
  message body was transmitted — also ends in `uncertain`, not in a retry.
* Errors the relay stated before accepting the body (4xx at MAIL/RCPT/DATA, refused
  connection) are safe to retry and get exponential backoff; 5xx replies mark the row
  `failed` with the server's reply. Any other exception inside a send ends the same
  way: `uncertain` once DATA has begun, otherwise a retry with backoff.

Addresses go on the wire as SMTP can carry them (punycode domains; a non-ASCII local
part only over a relay offering SMTPUTF8), and message-id headers are never RFC
2047-encoded: how the message is built lives in gateway/outbound/message.py.

So delivery is at-most-once per outbox row; the price is that a crash inside the small
window between "250 OK" and our commit needs a human decision. The Message-ID is fixed
at release, so even a human-approved resend is recognisably the same message to the
customer's mail client.

After a successful send, a copy may be APPENDed to the mailbox's IMAP `sent_folder`
(best effort, after the commit: a failed copy is logged and audited, never retried as
a send). That copy, the outbound `Message` record of a sent reply and the recovery of
stale claims live in gateway/outbound/sent.py.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import datetime, timedelta

from sqlalchemy import func, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from gateway.config import Config, SenderConfig
from gateway.outbound.message import build_message, envelope
from gateway.outbound.relay import (
    AMBIGUOUS,
    PERMANENT,
    SENT,
    TEMPORARY,
    Outcome,
    RelaySession,
    _name,
)

# Re-exported for callers and tests that import them from here.
from gateway.outbound.relay import MAX_PER_SESSION as MAX_PER_SESSION
from gateway.outbound.relay import _tls_context as _tls_context
from gateway.outbound.sent import copy_to_sent, recover_uncertain, store_outbound
from storage.audit import audit
from storage.db import session_scope
from storage.desk.lifecycle import reply_sent
from storage.models import Draft, DraftState, Message, MessageState, Outbox, OutboxState, utcnow
from storage.queue import check_transition

log = logging.getLogger(__name__)


def backoff(attempts: int, cfg: SenderConfig) -> timedelta:
    """Exponential: base, 2·base, 4·base … capped at backoff_max_seconds."""
    seconds = cfg.backoff_base_seconds * (2 ** max(0, attempts - 1))
    return timedelta(seconds=min(cfg.backoff_max_seconds, seconds))


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
            copy_to_sent(self.engine, self.config, row, payload, now, actor=self.worker)

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
        reply_sent(session, row.ticket_id, at=now, actor=self.worker)


def _set_draft(session: Session, draft_id: int | None, state: str) -> Draft | None:
    if draft_id is None:
        return None
    draft = session.get(Draft, draft_id)
    if draft is not None and draft.state in (DraftState.APPROVED, DraftState.SENT):
        draft.state = state
        draft.updated_at = utcnow()
        session.add(draft)
    return draft
