"""Threading: put each message on the ticket it belongs to, and record why.

A reply split into a new ticket means two reps answering one customer, so the signals
are tried strongest first and the one that matched is stored on the message:

1. `in-reply-to` — the message answers a stored message (ours or the customer's);
2. `references`  — any id in References, newest first (clients truncate and reorder,
                   so every id counts, not just the first);
3. `subject-token` — a `[#<ticket>]` token we put in every outgoing subject survives
                   clients that strip References (webmail, some mobile apps);
4. `new`         — otherwise a new ticket. Equal subjects alone never join tickets:
                   "Help" from two customers is two problems.

A subject token is only a hint, not a credential: ticket ids are small sequential
numbers, other helpdesks write `[#1234]` too, and anyone can guess one. So a token joins
only mail from someone already on that ticket, and how fully depends on how sure we are:

- the address of its customer or of any of its inbound mail: it joins (`subject-token`)
  and the draft under review goes stale;
- only the same company domain (never free mail, where a shared domain says nothing):
  a colleague, or someone posing as one. It joins with the mismatch on record
  (`subject-token:new-sender`, a `thread.new_sender` audit row) and gets its own draft,
  but the customer's draft under review is left alone: another sender must never change
  what the customer is about to be told;
- anyone else: a new ticket, the token passed over on record (`new:token-ignored`, a
  `thread.token_ignored` audit row) so a rep can still merge by hand. Ids outside
  PostgreSQL's integer range are never ours.

The sender is the raw From header's address, never one spelled in its display name.

Our own outbound messages count, and so does a released-but-unsent `Outbox` row, so a
very quick customer reply still finds its ticket. New mail on a ticket otherwise marks
the draft waiting for review stale: it answers a conversation that has moved on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, col, select

from nlp.types import ParsedMessage
from storage.audit import audit
from storage.models import Draft, DraftState, Message, Outbox, Ticket, utcnow

IN_REPLY_TO = "in-reply-to"
REFERENCES = "references"
SUBJECT_TOKEN = "subject-token"
NEW_SENDER = "subject-token:new-sender"
NEW = "new"
TOKEN_IGNORED = "new:token-ignored"

TOKEN = re.compile(r"\[#([0-9]+)\]")  # ASCII digits only: `[#١٢]` is a look-alike
# Ticket ids are PostgreSQL integers; a larger id is not ours (and raises there if looked up).
MAX_TICKET_ID = 2**31 - 1
OUT_OF_RANGE = "out of range"
NOT_A_PARTICIPANT = "sender is not on the ticket"
# A domain shared with a ticket's participant says nothing on these.
FREE_MAIL_DOMAINS = frozenset({
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com",
    "yahoo.com", "ymail.com", "aol.com", "icloud.com", "me.com", "mac.com", "proton.me",
    "protonmail.com", "pm.me", "web.de", "mail.com", "fastmail.com", "zoho.com",
    "yandex.com", "yandex.ru", "mail.ru", "qq.com", "163.com", "tutanota.com",
})  # fmt: skip
# Providers with one domain per country or generic suffix: gmx.de, yahoo.co.uk, hotmail.fr.
FREE_MAIL_BRANDS = frozenset({"gmx", "yahoo", "hotmail", "outlook", "live", "aol", "yandex"})
_PENDING = (DraftState.DRAFTED, DraftState.NEEDS_TRIAGE)
# A References header can be arbitrarily long; only the root and the newest ids count.
MAX_REFERENCES = 100


def _variants(msgid: str) -> list[str]:
    bare = msgid.strip().strip("<>")
    return [bare, f"<{bare}>"]


def ticket_for_message_id(session: Session, msgid: str, *, exclude: int | None) -> int | None:
    """The ticket of a stored message (or released reply) with this Message-ID."""
    if not msgid:
        return None
    stmt = select(Message.ticket_id).where(
        col(Message.message_id).in_(_variants(msgid)), col(Message.ticket_id).is_not(None)
    )
    if exclude is not None:
        stmt = stmt.where(col(Message.id) != exclude)
    found = session.exec(stmt.order_by(col(Message.id).desc())).first()
    if found is not None:
        return int(found)
    outbox = session.exec(
        select(Outbox.ticket_id).where(
            col(Outbox.message_id).in_(_variants(msgid)), col(Outbox.ticket_id).is_not(None)
        )
    ).first()
    return int(outbox) if outbox is not None else None


def _newest_reference_ticket(
    session: Session, references: tuple[str, ...], *, exclude: int | None
) -> int | None:
    """The ticket of the newest referenced message we know, in one query per table."""
    # The root (first) and the newest ids are the ones clients keep when they trim.
    kept = (*references[:1], *references[1:][-(MAX_REFERENCES - 1) :])
    refs = list(dict.fromkeys(r.strip().strip("<>") for r in kept if r.strip()))
    if not refs:
        return None
    wanted = [v for r in refs for v in _variants(r)]
    stmt = select(Message.message_id, Message.ticket_id).where(
        col(Message.message_id).in_(wanted), col(Message.ticket_id).is_not(None)
    )
    if exclude is not None:
        stmt = stmt.where(col(Message.id) != exclude)
    known = {str(mid).strip("<>"): int(tid) for mid, tid in session.exec(stmt).all() if tid}
    outbox = select(Outbox.message_id, Outbox.ticket_id).where(
        col(Outbox.message_id).in_(wanted), col(Outbox.ticket_id).is_not(None)
    )
    for mid, tid in session.exec(outbox).all():
        if tid is not None:
            known.setdefault(str(mid).strip("<>"), int(tid))
    for ref in reversed(refs):
        if ref in known:
            return known[ref]
    return None


@dataclass(frozen=True, slots=True)
class IgnoredToken:
    """A `[#id]` subject token that did not join its ticket, and why."""

    token: str
    reason: str
    ticket_id: int | None = None


@dataclass(frozen=True, slots=True)
class TicketMatch:
    ticket_id: int | None
    signal: str
    ignored: tuple[IgnoredToken, ...] = ()


def is_free_mail(domain: str) -> bool:
    domain = domain.strip().lower().rstrip(".")
    if domain in FREE_MAIL_DOMAINS:
        return True
    brand, _, suffix = domain.partition(".")
    labels = suffix.split(".")
    return brand in FREE_MAIL_BRANDS and len(labels) <= 2 and all(0 < len(x) <= 3 for x in labels)


def participation(
    session: Session, ticket: Ticket, sender: str, *, exclude: int | None = None
) -> str | None:
    """Whether `sender` is on the ticket: `SUBJECT_TOKEN` for a known address,
    `NEW_SENDER` for a shared non-free-mail domain, None if neither."""
    sender = sender.strip().lower()
    _, at, domain = sender.rpartition("@")
    if not at or not domain:
        return None
    stmt = (
        select(func.lower(col(Message.from_addr)))
        .where(
            Message.ticket_id == ticket.id,
            Message.direction == "inbound",
            col(Message.from_addr).is_not(None),
        )
        .distinct()
    )
    if exclude is not None:
        stmt = stmt.where(col(Message.id) != exclude)
    known = {str(a).strip() for a in session.exec(stmt).all() if a}
    if ticket.customer_addr:
        known.add(ticket.customer_addr.strip().lower())
    if sender in known:
        return SUBJECT_TOKEN
    if not is_free_mail(domain) and any(a.rpartition("@")[2] == domain for a in known):
        return NEW_SENDER
    return None


def subject_ticket(
    session: Session, subject: str, sender: str, *, exclude: int | None = None
) -> TicketMatch:
    """The ticket of the last `[#id]` token whose ticket exists and has `sender` on it.

    Also holds the tokens passed over on the way: out of range, or naming a ticket the
    sender is not on. A token for a ticket that does not exist is simply not ours.
    """
    ignored: list[IgnoredToken] = []
    for token in reversed(TOKEN.findall(subject or "")):
        digits = token.lstrip("0")
        number = int(digits) if 0 < len(digits) <= 10 else 0  # no int() of a huge string
        if not 1 <= number <= MAX_TICKET_ID:
            ignored.append(IgnoredToken(token[:40], OUT_OF_RANGE))
            continue
        ticket = session.get(Ticket, number)
        if ticket is None:
            continue
        signal = participation(session, ticket, sender, exclude=exclude)
        if signal is None:
            ignored.append(IgnoredToken(token, NOT_A_PARTICIPANT, number))
            continue
        return TicketMatch(number, signal, tuple(ignored))
    return TicketMatch(None, TOKEN_IGNORED if ignored else NEW, tuple(ignored))


def match_ticket(
    session: Session, parsed: ParsedMessage, *, exclude: int | None = None
) -> TicketMatch:
    """The ticket by the rules above, with any subject tokens that were passed over."""
    if parsed.in_reply_to:
        found = ticket_for_message_id(session, parsed.in_reply_to, exclude=exclude)
        if found is not None:
            return TicketMatch(found, IN_REPLY_TO)
    found = _newest_reference_ticket(session, parsed.references, exclude=exclude)
    if found is not None:
        return TicketMatch(found, REFERENCES)
    return subject_ticket(session, parsed.subject, parsed.from_addr, exclude=exclude)


def find_ticket(
    session: Session, parsed: ParsedMessage, *, exclude: int | None = None
) -> tuple[int | None, str]:
    """(ticket id, signal) by the rules above; (None, "new") if nothing matched."""
    match = match_ticket(session, parsed, exclude=exclude)
    return match.ticket_id, match.signal if match.ticket_id is not None else NEW


def assign_ticket(
    session: Session, message: Message, parsed: ParsedMessage, *, actor: str = "thread"
) -> tuple[Ticket, str]:
    """Attach `message` to its ticket (a new one if none, or a closed one's successor)."""
    match = match_ticket(session, parsed, exclude=message.id)
    signal = match.signal
    ticket = session.get(Ticket, match.ticket_id) if match.ticket_id is not None else None
    closed = ticket.id if ticket is not None and ticket.status == "closed" else None
    if ticket is None or closed is not None:
        signal = TOKEN_IGNORED if match.ignored else NEW
        ticket = Ticket(
            subject=parsed.subject,
            customer_addr=parsed.from_addr or (message.envelope_from or "").strip("<>") or None,
            customer_name=parsed.from_name or None,
            mailbox=message.mailbox,
            linked_ticket=closed,
        )
        session.add(ticket)
        session.flush()
    else:
        ticket.updated_at = utcnow()
        session.add(ticket)
        if signal == NEW_SENDER:
            details = {"ticket": ticket.id, "customer": ticket.customer_addr}
            audit(session, actor=actor, action="thread.new_sender", entity_type="message",
                  entity_id=message.id, details=details)  # fmt: skip
        else:
            mark_stale(session, int(ticket.id or 0), by_message=message.id, actor=actor)
    message.ticket_id = ticket.id
    message.thread_signal = signal
    session.add(message)
    if match.ignored:
        audit(
            session,
            actor=actor,
            action="thread.token_ignored",
            entity_type="message",
            entity_id=message.id,
            details={
                "ticket": ticket.id,
                "signal": signal,
                "tokens": [
                    {"token": t.token, "ticket": t.ticket_id, "reason": t.reason}
                    for t in match.ignored
                ],
            },
        )
    return ticket, signal


def mark_stale(session: Session, ticket_id: int, *, by_message: int | None, actor: str) -> int:
    """Pending drafts of the ticket become stale; returns how many."""
    drafts = session.exec(
        select(Draft).where(Draft.ticket_id == ticket_id, col(Draft.state).in_(_PENDING))
    ).all()
    for draft in drafts:
        old = draft.state
        draft.state = DraftState.STALE
        draft.version += 1
        draft.updated_at = utcnow()
        draft.updated_by = actor
        session.add(draft)
        audit(
            session,
            actor=actor,
            action="draft.stale",
            entity_type="draft",
            entity_id=draft.id,
            details={"from": old, "new_message": by_message},
        )
    return len(drafts)
