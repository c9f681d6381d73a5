"""What the incident screens read: declared incidents, candidates, one incident in full.

Candidates are computed, never stored, so every read recomputes them from the last
week of mail (the history that tells a burst from a key's ordinary rate) plus the
window ops look at. The same candidates say which new tickets a declared incident
does not have yet (`split_known`), so the list and an incident agree on suggestions.
Plain functions over a Session, run in the screens' thread workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from nlp.incidents import Candidate, find_candidates, sighting, split_known
from nlp.sparkline import sparkline
from storage.incidents.ops import IncidentView, incident_view, list_incidents, mail_facts
from storage.incidents.overview import attached_tickets, mail_times, tickets_by_id
from storage.incidents.personal import DEFAULT_BODY
from storage.incidents.tables import STATUSES, Incident, IncidentNotice

WINDOW = timedelta(hours=72)
HISTORY = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class IncidentSummary:
    incident: Incident
    ticket_ids: tuple[int, ...]
    customers: tuple[str, ...]
    times: tuple[datetime, ...]  # its tickets' customer mails, for the sparkline
    suggested: tuple[int, ...]  # tickets of a matching candidate it does not have


@dataclass(frozen=True, slots=True)
class Board:
    incidents: tuple[IncidentSummary, ...]
    candidates: tuple[Candidate, ...]  # not declared yet
    # Metric spikes overlapping them: (description, sparkline).
    metrics: tuple[tuple[str, str], ...] = ()

    def spans(self) -> list[tuple[str, datetime, datetime]]:
        """(what, start, end) of every incident and candidate, for the metrics beside."""
        out = [(f"candidate {c.ref}", c.start, c.end) for c in self.candidates]
        out += [
            (f"incident #{s.incident.id}", s.times[0], s.times[-1])
            for s in self.incidents
            if s.times
        ]
        return out


@dataclass(frozen=True, slots=True)
class Suggested:
    ticket_id: int
    customer: str
    subject: str


@dataclass(frozen=True, slots=True)
class IncidentDetail:
    view: IncidentView
    times: tuple[datetime, ...]
    suggested: tuple[Suggested, ...]

    @property
    def incident(self) -> Incident:
        return self.view.incident

    @property
    def pending(self) -> IncidentNotice | None:
        """The update written but not released yet (there is at most one)."""
        return next((n for n in self.view.notices if n.released_at is None), None)

    @property
    def notice_start(self) -> str:
        """What the editor opens with: the unreleased update, else the last one released
        (an update starts from what customers last read), else the default text."""
        if self.pending is not None:
            return self.pending.body
        released = [n for n in self.view.notices if n.released_at is not None]
        return released[-1].body if released else DEFAULT_BODY


def candidates(session: Session, *, now: datetime, window: timedelta = WINDOW) -> list[Candidate]:
    facts = mail_facts(session, since=now - HISTORY - window)
    return find_candidates([sighting(*f) for f in facts], since=now - window)


def read_board(session: Session, *, now: datetime) -> Board:
    found = candidates(session, now=now)
    attached = attached_tickets(session)
    fresh, suggest = split_known(found, {i: set(t) for i, t in attached.items()})
    incidents = list_incidents(session)
    times = mail_times(session, (t for tickets in attached.values() for t in tickets))
    summaries = []
    for incident in incidents:
        iid = int(incident.id or 0)
        tickets = attached.get(iid, {})
        summaries.append(
            IncidentSummary(
                incident=incident,
                ticket_ids=tuple(sorted(tickets)),
                customers=tuple(sorted({c for c in tickets.values() if c})),
                times=tuple(sorted(t for tid in tickets for t in times.get(tid, ()))),
                suggested=tuple(suggest.get(iid, ())),
            )
        )
    # Open incidents first, newest first within each group.
    summaries.sort(key=lambda s: s.incident.status == "resolved")
    return Board(tuple(summaries), tuple(fresh))


def read_detail(session: Session, incident_id: int, *, now: datetime) -> IncidentDetail:
    view = incident_view(session, incident_id)
    mine = {t.ticket_id for t in view.tickets}
    attached = attached_tickets(session)
    _, suggest = split_known(candidates(session, now=now), {i: set(t) for i, t in attached.items()})
    suggested = tuple(
        Suggested(int(t.id or 0), (t.customer_addr or "").lower(), t.subject)
        for t in tickets_by_id(session, suggest.get(incident_id, ()))
        if int(t.id or 0) not in mine
    )
    times = mail_times(session, mine)
    return IncidentDetail(view, tuple(sorted(t for ts in times.values() for t in ts)), suggested)


def next_status(status: str) -> str:
    """The status after `status`, wrapping from resolved to investigating (a reopen)."""
    index = STATUSES.index(status) if status in STATUSES else -1
    return STATUSES[(index + 1) % len(STATUSES)]


def span(times: tuple[datetime, ...]) -> str:
    if not times:
        return "no mail"
    start, end = times[0], times[-1]
    return f"{start:%a %H:%M}–{end:%a %H:%M} UTC"


def spark(times: tuple[datetime, ...]) -> str:
    """Mails per ten minutes over the span of `times`."""
    if not times:
        return ""
    return sparkline(times, start=times[0], end=times[-1])


def title_for(candidate: Candidate) -> str:
    """A title to start from: the values of the candidate's two strongest keys."""
    values = [value for (_kind, value) in (e.key for e in candidate.evidence[:2])]
    return ("Failures: " + ", ".join(values))[:200] if values else "New incident"
