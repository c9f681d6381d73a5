"""What ops do with an incident: declare it, move its status, attach and detach tickets.

Every change writes an audit row in the same transaction. The facts candidate incidents
are found from are read in `storage.incidents.facts` (`mail_facts` is importable from
here too); the grouping itself is `nlp.incidents`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from storage.audit import audit
from storage.db import session_scope
from storage.incidents.facts import MailFacts, mail_facts  # noqa: F401  (callers import them here)
from storage.incidents.tables import STATUSES, Incident, IncidentNotice, IncidentTicket
from storage.models import Ticket, utcnow
from storage.review.types import ReviewError


@dataclass(frozen=True, slots=True)
class IncidentTicketRow:
    ticket_id: int
    customer: str
    subject: str
    attached_by: str
    reason: str
    signature: str | None


@dataclass(frozen=True, slots=True)
class IncidentView:
    incident: Incident
    tickets: tuple[IncidentTicketRow, ...]
    notices: tuple[IncidentNotice, ...]

    @property
    def customers(self) -> tuple[str, ...]:
        return tuple(sorted({t.customer for t in self.tickets if t.customer}))


def declare(
    engine: Engine,
    *,
    title: str,
    actor: str,
    ticket_ids: Sequence[int],
    keys: Iterable[tuple[str, str]] = (),
    candidate_ref: str | None = None,
    started_at: datetime | None = None,
    status: str = "investigating",
) -> int:
    """A new incident with its tickets attached; its id."""
    if not actor.strip():
        raise ReviewError("declaring an incident needs a named person")
    if not title.strip():
        raise ReviewError("an incident needs a title")
    _check_status(status)
    with session_scope(engine) as session:
        incident = Incident(
            title=title.strip()[:500],
            status=status,
            keys=[[k, v] for k, v in keys],
            candidate_ref=candidate_ref,
            declared_by=actor,
            started_at=started_at,
        )
        session.add(incident)
        session.flush()
        iid = int(incident.id or 0)
        audit(
            session,
            actor=actor,
            action="incident.declared",
            entity_type="incident",
            entity_id=iid,
            details={"title": incident.title, "status": status, "candidate": candidate_ref},
        )
        attach_in(session, iid, ticket_ids, actor=actor, reason="declared with the candidate")
    return iid


def attach_in(
    session: Session, incident_id: int, ticket_ids: Iterable[int], *, actor: str, reason: str
) -> list[int]:
    """Attach tickets not attached yet, inside the caller's transaction; those attached."""
    have = set(
        session.exec(
            select(IncidentTicket.ticket_id).where(IncidentTicket.incident_id == incident_id)
        ).all()
    )
    added = []
    for tid in dict.fromkeys(int(t) for t in ticket_ids):
        if tid in have or session.get(Ticket, tid) is None:
            continue
        session.add(
            IncidentTicket(incident_id=incident_id, ticket_id=tid, attached_by=actor, reason=reason)
        )
        added.append(tid)
    if added:
        audit(
            session,
            actor=actor,
            action="incident.attached",
            entity_type="incident",
            entity_id=incident_id,
            details={"tickets": added, "reason": reason[:500]},
        )
    return added


def attach(engine: Engine, incident_id: int, ticket_ids: Iterable[int], *, actor: str) -> list[int]:
    with session_scope(engine) as session:
        _incident(session, incident_id)
        return attach_in(session, incident_id, ticket_ids, actor=actor, reason="by hand")


def detach(engine: Engine, incident_id: int, ticket_ids: Iterable[int], *, actor: str) -> int:
    wanted = [int(t) for t in ticket_ids]
    with session_scope(engine) as session:
        _incident(session, incident_id)
        rows = session.exec(
            select(IncidentTicket).where(
                IncidentTicket.incident_id == incident_id,
                col(IncidentTicket.ticket_id).in_(wanted),
            )
        ).all()
        for row in rows:
            session.delete(row)
        if rows:
            audit(
                session,
                actor=actor,
                action="incident.detached",
                entity_type="incident",
                entity_id=incident_id,
                details={"tickets": [r.ticket_id for r in rows]},
            )
        return len(rows)


def set_status(engine: Engine, incident_id: int, status: str, *, actor: str) -> None:
    _check_status(status)
    with session_scope(engine) as session:
        incident = _incident(session, incident_id)
        old = incident.status
        incident.status = status
        incident.updated_at = utcnow()
        session.add(incident)
        audit(
            session,
            actor=actor,
            action="incident.status",
            entity_type="incident",
            entity_id=incident_id,
            details={"from": old, "to": status},
        )


def list_incidents(session: Session, *, include_resolved: bool = True) -> list[Incident]:
    stmt = select(Incident).order_by(col(Incident.id).desc())
    if not include_resolved:
        stmt = stmt.where(Incident.status != "resolved")
    return list(session.exec(stmt).all())


def incident_view(session: Session, incident_id: int) -> IncidentView:
    incident = _incident(session, incident_id)
    rows = session.exec(
        select(IncidentTicket, Ticket)
        .join(Ticket, col(Ticket.id) == col(IncidentTicket.ticket_id))
        .where(IncidentTicket.incident_id == incident_id)
        .order_by(col(IncidentTicket.ticket_id))
    ).all()
    tickets = tuple(
        IncidentTicketRow(
            ticket_id=int(t.id or 0),
            customer=(t.customer_addr or "").lower(),
            subject=t.subject,
            attached_by=link.attached_by,
            reason=link.reason,
            signature=t.signature,
        )
        for link, t in rows
    )
    notices = session.exec(
        select(IncidentNotice)
        .where(IncidentNotice.incident_id == incident_id)
        .order_by(col(IncidentNotice.id))
    ).all()
    return IncidentView(incident, tickets, tuple(notices))


def incidents_of_ticket(session: Session, ticket_id: int) -> list[Incident]:
    return list(
        session.exec(
            select(Incident)
            .join(IncidentTicket, col(IncidentTicket.incident_id) == col(Incident.id))
            .where(IncidentTicket.ticket_id == ticket_id)
        ).all()
    )


def _incident(session: Session, incident_id: int) -> Incident:
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise ReviewError(f"incident {incident_id} does not exist")
    return incident


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise ReviewError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
