"""Reading delivery reports, and linking a bounce to the reply it reports on.

Screening (`screen.py`) decides that a message is a bounce; this module reads what the
bounce says — the RFC 3464 `message/delivery-status` blocks (which recipient failed, for
good or for now, and the MTA's diagnostic), the Message-IDs of the mail it returns, or
the SMTP reply quoted in a non-standard one — and then finds our outbox rows it is about.

A bounce is linked by our Message-ID when it quotes one. Only a bounce that names no
message at all is matched by its failed address, to the latest reply sent there in the
week before it was written; a permanent failure marks that delivery (and its draft)
failed, with an audit record, so it shows in the problems view.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message as EmailMessage

from sqlmodel import Session, col, select

from gateway import headers as h
from gateway.conversation.verdict import BOUNCE, DATE_MAX_SKEW, ScreenVerdict, bracketed
from nlp.types import ParsedMessage
from storage.audit import audit
from storage.models import Draft, DraftState, Message, Outbox, OutboxState, utcnow

_MSGID_LINE = re.compile(r"^message-id:\s*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
_SMTP_REPLY = re.compile(r"(?<![\d.])[45]\d\d[ -][^\n]{3,160}")


def smtp_reply_in(text: str) -> str:
    """The first SMTP reply quoted in a non-standard bounce ("550 No such user")."""
    match = _SMTP_REPLY.search(text[:20_000])
    return h.clean(match.group(0), 200) if match else ""


def b2s(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


@dataclass(frozen=True, slots=True)
class DeliveryStatus:
    action: str = ""
    diagnostic: str = ""
    recipients: tuple[str, ...] = ()
    # Recipients whose own block says failed (Action: failed, or a 5.x.x Status).
    failed: tuple[str, ...] = ()


_DSN_BLOCK_BREAK = re.compile(r"\r?\n[ \t]*\r?\n")
_DSN_FIELD = re.compile(
    r"^(action|status|diagnostic-code|final-recipient|original-recipient)[ \t]*:[ \t]*(.+)$",
    re.IGNORECASE | re.MULTILINE,
)


def _status_text(part: EmailMessage) -> str:
    payload = part.get_payload()
    if isinstance(payload, list):  # the stdlib split the per-recipient blocks
        return "\n\n".join(b.as_string() for b in payload if isinstance(b, EmailMessage))
    data = part.get_payload(decode=True)
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(payload)


def delivery_status(tree: EmailMessage) -> DeliveryStatus:
    """Action, Status/Diagnostic-Code and recipients from message/delivery-status parts.

    Action is often missing in the wild; a 5.x.x Status means failed, 4.x.x delayed.
    """
    actions: list[str] = []
    diagnostic = ""
    recipients: list[str] = []
    failed: list[str] = []
    for part in tree.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        # One block per recipient (after the per-message one): which one failed matters.
        for block in _DSN_BLOCK_BREAK.split(_status_text(part)):
            block_actions: list[str] = []
            named: list[str] = []
            for name, value in _DSN_FIELD.findall(block):
                name, value = name.lower(), h.clean(value)
                if name == "action":
                    block_actions.append(value.lower())
                elif name == "status":
                    block_actions.append({"5": "failed", "4": "delayed"}.get(value[:1], ""))
                    diagnostic = diagnostic or value
                elif name == "diagnostic-code":
                    diagnostic = value
                else:
                    named.append(value.split(";", 1)[-1].strip())
            actions.extend(block_actions)
            recipients.extend(r for r in dict.fromkeys(named) if r not in recipients)
            if "failed" in block_actions:
                failed.extend(r for r in dict.fromkeys(named) if r not in failed)
    action = "failed" if "failed" in actions else next((a for a in actions if a), "")
    return DeliveryStatus(action, diagnostic, tuple(recipients), tuple(failed))


def original_ids(parsed: ParsedMessage, tree: EmailMessage | None) -> tuple[str, ...]:
    """Message-IDs of the mail a bounce reports on: attached original, headers, text."""
    ids: list[str] = []
    if tree is not None:
        for part in tree.walk():
            ctype = part.get_content_type()
            if ctype == "message/rfc822":
                inner = part.get_payload()
                first = inner[0] if isinstance(inner, list) and inner else None
                if isinstance(first, EmailMessage):
                    ids.extend(h.message_ids(first.get("Message-ID")))
            elif ctype in ("text/rfc822-headers", "text/plain"):
                payload = part.get_payload(decode=True)
                if isinstance(payload, bytes):
                    text = payload.decode("utf-8", "replace")
                    for match in _MSGID_LINE.findall(text):
                        ids.extend(h.message_ids(match))
    else:
        for match in _MSGID_LINE.findall(parsed.text):
            ids.extend(h.message_ids(match))
    if parsed.in_reply_to:
        ids.append(parsed.in_reply_to)
    ids.extend(parsed.references)
    return tuple(dict.fromkeys(i for i in ids if i and i != parsed.message_id))


# ---------------------------------------------------------------- bounce → outbox


def link_bounce(
    session: Session, message: Message, verdict: ScreenVerdict, *, actor: str
) -> list[int]:
    """Attach a bounce to the outbox rows it reports on; a failure marks them failed.

    Returns the ids of the outbox rows found. The bounce joins their ticket so the rep
    sees it in the conversation.
    """
    if verdict.kind != BOUNCE:
        return []
    matched_by = "message-id"
    rows: list[Outbox] = []
    if verdict.original_ids:
        wanted = {i for oid in verdict.original_ids for i in (oid, bracketed(oid))}
        query = select(Outbox).where(col(Outbox.message_id).in_(sorted(wanted)))
        rows = list(session.exec(query).all())
    elif verdict.recipients:
        # Only a bounce that names no message at all: one that quotes another message's
        # Message-ID reports on that message, not on our latest reply to the address.
        at = _written(verdict.written_at, message.received_at)
        # A permanent report fails only the replies to the addresses that failed for good.
        targets = verdict.failed_recipients if verdict.permanent else verdict.recipients
        rows, matched_by = _sent_to(session, targets, at), "recipient"
    found: list[int] = []
    for row in rows:
        found.append(int(row.id or 0))
        if message.ticket_id is None and row.ticket_id is not None:
            message.ticket_id = row.ticket_id
            message.thread_signal = "bounce"
            session.add(message)
        if not verdict.permanent or row.state == OutboxState.FAILED:
            continue
        if matched_by == "recipient" and row.state != OutboxState.SENT:
            continue  # the latest reply there is already failed or waiting to be retried
        old = row.state
        row.state = OutboxState.FAILED
        row.last_error = f"bounced: {verdict.diagnostic or verdict.reason}"[:2000]
        session.add(row)
        if row.draft_id is not None:
            draft = session.get(Draft, row.draft_id)
            if draft is not None and draft.state in (DraftState.APPROVED, DraftState.SENT):
                draft.state = DraftState.FAILED
                session.add(draft)
        audit(
            session,
            actor=actor,
            action="outbox.bounced",
            entity_type="outbox",
            entity_id=row.id,
            details={
                "from": old,
                "bounce_message": message.id,
                "reason": verdict.reason[:500],
                "matched_by": matched_by,
            },
        )
    return found


# A bounce that quotes none of our Message-IDs is matched to a reply by its failed
# recipient, but only to a reply sent this recently, and only to the latest one.
BOUNCE_MATCH_WINDOW = timedelta(days=7)
_RECENT_SENDS_SCANNED = 2000


def _written(date: datetime | None, arrived: datetime | None) -> datetime:
    """When a bounce was written: its Date (allowing DATE_MAX_SKEW for the MTA's clock),
    never later than its arrival. A bounce stored late (a backfill, a backlog) keeps the
    time it was written, so it cannot be matched to a reply sent since."""
    at = arrived or utcnow()
    if date is not None:
        date = date if date.tzinfo is not None else date.replace(tzinfo=UTC)
        at = min(at, date + DATE_MAX_SKEW)
    return at


def _sent_to(session: Session, recipients: tuple[str, ...], at: datetime) -> list[Outbox]:
    """The latest reply sent to each failed recipient within BOUNCE_MATCH_WINDOW before `at`.

    Some MTAs (qmail without the copy, many appliance gateways) report only the address
    that failed. Recipients are a JSON list, which no portable index can search, so the
    recent sends are read newest first and matched here.
    """
    wanted = {r.strip().strip("<>").lower() for r in recipients if "@" in r}
    if not wanted:
        return []
    recent = session.exec(
        select(Outbox)
        # Whatever its state now: if the latest reply there already failed (or waits
        # for a retry), the bounce is about it, not about an older one that went out.
        .where(col(Outbox.sent_at) >= at - BOUNCE_MATCH_WINDOW, col(Outbox.sent_at) <= at)
        .order_by(col(Outbox.sent_at).desc(), col(Outbox.id).desc())
        .limit(_RECENT_SENDS_SCANNED)
    ).all()
    latest: dict[str, Outbox] = {}
    for row in recent:
        for addr in row.to_addrs:
            key = h.split_address(addr)[1].lower()
            if key in wanted and key not in latest:
                latest[key] = row
    return list({id(row): row for row in latest.values()}.values())
