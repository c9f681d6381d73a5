"""One notice for an incident, personalised per customer, released by a named person.

Ops write the notice once with placeholders ({first_name}, {hosts}, {regions},
{tickets}, {title}, {since}; `{hosts|your services}` gives a fallback). The preview
has one message per customer address: threaded into that customer's latest attached
ticket, answering every ticket they have in the incident. Release takes the typed
count, writes one outbox row per address (a unique row per notice and address makes a
second release of the same update impossible), supersedes the open drafts it answers,
and records who released it. A later update goes to everyone attached now and everyone
an earlier update of this incident reached.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from storage.audit import audit
from storage.db import session_scope
from storage.incidents.personal import (
    PLACEHOLDERS,
    customer_values,
    render,
    reply_subject,
    unknown_placeholders,
)
from storage.incidents.tables import (
    STATUSES,
    Incident,
    IncidentDelivery,
    IncidentNotice,
    IncidentTicket,
)
from storage.models import (
    Draft,
    DraftState,
    Message,
    MessageState,
    Outbox,
    OutboxState,
    Ticket,
    utcnow,
)
from storage.review.release import subject_with_token
from storage.review.types import OPEN_STATES, ConfirmationMismatch, ReviewError


@dataclass(frozen=True, slots=True)
class NoticeMessage:
    address: str
    ticket_id: int  # the thread it goes into: the customer's latest ticket
    answers: tuple[int, ...]  # every ticket of theirs it answers
    subject: str
    body: str
    problems: tuple[str, ...] = ()
    values: dict[str, str] = field(default_factory=dict)


def save_notice(
    engine: Engine, incident_id: int, *, body: str, actor: str, status: str, subject: str = ""
) -> int:
    """Write (or rewrite, while unreleased) the incident's next update; its id."""
    if status not in STATUSES:
        raise ReviewError(f"status must be one of {', '.join(STATUSES)}")
    unknown = unknown_placeholders(body + subject)
    if unknown:
        raise ReviewError(
            f"unknown placeholder(s) {', '.join(unknown)}; known: {', '.join(PLACEHOLDERS)}"
        )
    if not body.strip():
        raise ReviewError("the notice is empty")
    with session_scope(engine) as session:
        if session.get(Incident, incident_id) is None:
            raise ReviewError(f"incident {incident_id} does not exist")
        notice = session.exec(
            select(IncidentNotice).where(
                IncidentNotice.incident_id == incident_id,
                col(IncidentNotice.released_at).is_(None),
            )
        ).first() or IncidentNotice(incident_id=incident_id, status=status, written_by=actor)
        notice.body, notice.subject, notice.status = body, subject, status
        notice.written_by, notice.written_at = actor, utcnow()
        session.add(notice)
        session.flush()
        audit(
            session,
            actor=actor,
            action="incident.notice_written",
            entity_type="incident",
            entity_id=incident_id,
            details={"notice_id": notice.id, "status": status, "chars": len(body)},
        )
        return int(notice.id or 0)


def preview(session: Session, notice_id: int) -> list[NoticeMessage]:
    """Every message the release would send, one per customer address."""
    notice = session.get(IncidentNotice, notice_id)
    if notice is None:
        raise ReviewError(f"notice {notice_id} does not exist")
    incident = session.get(Incident, notice.incident_id)
    assert incident is not None
    tickets = _recipient_tickets(session, incident)
    out = []
    for address, ticket_rows in sorted(tickets.items()):
        latest = max(ticket_rows, key=lambda t: (t.updated_at, t.id or 0))
        ids = tuple(sorted(int(t.id or 0) for t in ticket_rows))
        values = customer_values(session, incident, ids, latest)
        body, missing = render(notice.body, values)
        subject_text, missing_s = render(notice.subject, values)
        base = subject_text.strip() or reply_subject(latest.subject)
        problems = tuple(f"no value for {{{name}}}" for name in dict.fromkeys(missing + missing_s))
        out.append(
            NoticeMessage(
                address=address,
                ticket_id=int(latest.id or 0),
                answers=ids,
                subject=subject_with_token(base, int(latest.id or 0)),
                body=body,
                problems=problems,
                values=values,
            )
        )
    return out


def release_notice(
    engine: Engine,
    notice_id: int,
    *,
    actor: str,
    confirm_count: int | None,
    from_address: str,
    now: datetime | None = None,
) -> list[int]:
    """Send the notice to every recipient (outbox rows), all or nothing; their ids."""
    if not actor.strip():
        raise ReviewError("a release needs a named person")
    now = now or utcnow()
    domain = from_address.rsplit("@", 1)[-1].strip(">").lower() or "localhost"
    with session_scope(engine) as session:
        notice = session.get(IncidentNotice, notice_id)
        if notice is None:
            raise ReviewError(f"notice {notice_id} does not exist")
        if notice.released_at is not None:
            raise ReviewError(f"this notice was already released by {notice.released_by}")
        messages = preview(session, notice_id)
        if not messages:
            raise ReviewError("the incident has no customers to notify")
        if confirm_count != len(messages):
            raise ConfirmationMismatch(
                f"typed {confirm_count if confirm_count is not None else 'nothing'}, but the "
                f"notice goes to {len(messages)} customers: nothing was released"
            )
        blocked = [f"{m.address}: {'; '.join(m.problems)}" for m in messages if m.problems]
        if blocked:
            raise ReviewError("fill or give a fallback first — " + " | ".join(blocked[:5]))
        bulk_id = f"incident-{notice.incident_id}-{notice_id}"
        ids = [_enqueue(session, notice, m, actor, bulk_id, domain, now) for m in messages]
        notice.released_by, notice.released_at, notice.recipients = actor, now, len(messages)
        session.add(notice)
        incident = session.get(Incident, notice.incident_id)
        assert incident is not None
        incident.status, incident.updated_at = notice.status, now
        session.add(incident)
        audit(
            session,
            actor=actor,
            action="incident.notice_released",
            entity_type="incident",
            entity_id=incident.id,
            details={"notice_id": notice_id, "recipients": len(messages), "status": notice.status},
        )
    return ids


def _enqueue(
    session: Session,
    notice: IncidentNotice,
    msg: NoticeMessage,
    actor: str,
    bulk_id: str,
    domain: str,
    now: datetime,
) -> int:
    last = session.exec(
        select(Message)
        .where(Message.ticket_id == msg.ticket_id, Message.direction == "inbound")
        .order_by(col(Message.written_at).desc(), col(Message.id).desc())
    ).first()
    references = list(last.references or []) if last else []
    if last and last.message_id and last.message_id not in references:
        references.append(last.message_id)
    outbox = Outbox(
        ticket_id=msg.ticket_id,
        state=OutboxState.PENDING,
        message_id=f"<sg-{uuid.uuid4().hex}@{domain}>",
        to_addrs=[msg.address],
        subject=msg.subject,
        body=msg.body,
        in_reply_to=last.message_id if last else None,
        references=references,
        released_by=actor,
        released_at=now,
        bulk_id=bulk_id,
    )
    session.add(outbox)
    session.flush()
    session.add(
        IncidentDelivery(
            notice_id=int(notice.id or 0),
            incident_id=notice.incident_id,
            address=msg.address,
            ticket_id=msg.ticket_id,
            outbox_id=outbox.id,
            answered=list(msg.answers),
            values=msg.values,
        )
    )
    _answer_drafts(session, msg.answers, notice, actor, now)
    return int(outbox.id or 0)


def _answer_drafts(
    session: Session, ticket_ids: tuple[int, ...], notice: IncidentNotice, actor: str, now: datetime
) -> None:
    """The customer's open drafts are answered by the notice: superseded, audited."""
    drafts = session.exec(
        select(Draft).where(col(Draft.ticket_id).in_(ticket_ids), col(Draft.state).in_(OPEN_STATES))
    ).all()
    for draft in drafts:
        session.execute(
            update(Draft)
            .where(col(Draft.id) == draft.id, col(Draft.version) == draft.version)
            .values(state=DraftState.SUPERSEDED, version=draft.version + 1, updated_at=now,
                    updated_by=actor)
        )  # fmt: skip
        message = session.get(Message, draft.message_pk)
        if message is not None and message.state == MessageState.DRAFTED:
            message.state = MessageState.APPROVED
            session.add(message)
        audit(
            session,
            actor=actor,
            action="draft.answered_by_notice",
            entity_type="draft",
            entity_id=draft.id,
            details={"incident_id": notice.incident_id, "notice_id": notice.id},
        )


def _recipient_tickets(session: Session, incident: Incident) -> dict[str, list[Ticket]]:
    attached = session.exec(
        select(Ticket)
        .join(IncidentTicket, col(IncidentTicket.ticket_id) == col(Ticket.id))
        .where(IncidentTicket.incident_id == incident.id)
    ).all()
    reached = session.exec(
        select(Ticket)
        .join(IncidentDelivery, col(IncidentDelivery.ticket_id) == col(Ticket.id))
        .where(IncidentDelivery.incident_id == incident.id)
    ).all()
    out: dict[str, dict[int, Ticket]] = defaultdict(dict)
    for ticket in [*attached, *reached]:
        address = (ticket.customer_addr or "").strip().lower()
        if address:
            out[address][int(ticket.id or 0)] = ticket
    return {a: list(t.values()) for a, t in out.items()}


def delivered_addresses(session: Session, notice_id: int) -> set[str]:
    rows = session.exec(
        select(IncidentDelivery.address).where(IncidentDelivery.notice_id == notice_id)
    ).all()
    return set(rows)


def latest_released(session: Session, incident_id: int) -> IncidentNotice | None:
    return session.exec(
        select(IncidentNotice)
        .where(
            IncidentNotice.incident_id == incident_id, col(IncidentNotice.released_at).is_not(None)
        )
        .order_by(col(IncidentNotice.id).desc())
    ).first()


def as_json(msg: NoticeMessage) -> dict[str, Any]:
    return {"to": msg.address, "ticket": msg.ticket_id, "answers": list(msg.answers),
            "subject": msg.subject, "body": msg.body, "problems": list(msg.problems)}  # fmt: skip
