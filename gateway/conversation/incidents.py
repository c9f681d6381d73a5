"""New mail during a declared incident: attach its ticket, and draft the notice.

While ops have an incident declared, a ticket that names one of its strong keys (the
log signature, the failing host, the error code) is attached as it arrives, with the
key as the reason (ops can detach it). Its draft is then the incident's latest notice,
personalised for this customer, unless this customer already received that notice,
in which case the ordinary composer writes it, now allowed to say "we are aware".
A person still releases every draft. The keys every mail names, which candidates are
found from, are computed here too (`incident_keys`), for its analysis row.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from sqlmodel import Session, col, select

from nlp.incidents import mail_keys, matches, sighting
from nlp.types import Analysis, DraftProposal
from storage.incidents.facts import keys_json, mail_words
from storage.incidents.notice import delivered_addresses, latest_released
from storage.incidents.ops import attach_in, incidents_of_ticket
from storage.incidents.personal import customer_values, render
from storage.incidents.tables import Incident, IncidentTicket
from storage.models import Ticket, utcnow


@dataclass(frozen=True, slots=True)
class IncidentMatch:
    incident_id: int
    title: str
    reason: str
    body: str | None = None  # the notice for this customer, when they have not had it
    missing: tuple[str, ...] = ()


def match_incident(
    session: Session, ticket: Ticket, analysis: Analysis, *, customer: str
) -> IncidentMatch | None:
    """The open incident this ticket belongs to (attaching it on a key match), if any."""
    tid = int(ticket.id or 0)
    attached = [i for i in incidents_of_ticket(session, tid) if i.status != "resolved"]
    reason = "attached earlier"
    incident = attached[0] if attached else None
    if incident is None:
        facts = sighting(
            tid,
            customer,
            utcnow(),
            [(e.label, e.text) for e in analysis.entities],
            [f.signature for f in analysis.log_findings if f.signature],
            analysis.intent,
        )
        open_ones = session.exec(
            select(Incident).where(Incident.status != "resolved").order_by(col(Incident.id))
        ).all()
        for candidate in open_ones:
            shared = matches([(k, v) for k, v in candidate.keys], facts.keys)
            if shared:
                incident = candidate
                reason = "matched " + ", ".join(f"{k}={v}" for k, v in shared[:3]) + " on arrival"
                attach_in(session, int(candidate.id or 0), [tid], actor="pipeline", reason=reason)
                break
    if incident is None:
        return None
    iid = int(incident.id or 0)
    notice = latest_released(session, iid)
    address = customer.strip().lower()
    if notice is None or address in delivered_addresses(session, int(notice.id or 0)):
        return IncidentMatch(iid, incident.title, reason)
    theirs = session.exec(
        select(IncidentTicket.ticket_id)
        .join(Ticket, col(Ticket.id) == col(IncidentTicket.ticket_id))
        .where(IncidentTicket.incident_id == iid, col(Ticket.customer_addr).ilike(address))
    ).all()
    ids = tuple(sorted({tid, *theirs}))
    body, missing = render(notice.body, customer_values(session, incident, ids, ticket))
    return IncidentMatch(iid, incident.title, reason, body, tuple(missing))


def incident_keys(analysis: Analysis, subject: str | None) -> list[list[str]]:
    """What the mail names for finding incidents, as its analysis row keeps them
    (`AnalysisRecord.incident_keys`): stored when the mail is analysed, so that listing
    candidates never scans its text (storage.incidents.facts computes the same lazily)."""
    return keys_json(
        mail_keys(
            [(e.label, e.text) for e in analysis.entities],
            [f.signature for f in analysis.log_findings if f.signature],
            mail_words(subject, analysis.reply_text),
        )
    )


def incident_proposal(proposal: DraftProposal, incident: IncidentMatch) -> DraftProposal:
    """The incident's notice, for this customer, as the draft body."""
    brief = dict(proposal.brief)
    brief["decision"] = f"incident #{incident.incident_id} notice ({incident.reason})"
    brief["incident"] = {"id": incident.incident_id, "title": incident.title}
    if incident.missing:
        brief["flags"] = [*(brief.get("flags") or []), "notice values missing: "
                          + ", ".join(incident.missing)]  # fmt: skip
    return dataclasses.replace(
        proposal,
        body=incident.body or proposal.body,
        needs_triage=bool(incident.missing),
        unfilled=(),
        article_id=f"incident:{incident.incident_id}",
        brief=brief,
    )
