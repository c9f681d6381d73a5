"""Per-customer values for an incident notice, and filling its placeholders.

A notice is written once; each customer reads it with their own name, the hosts and
regions they told us about and their ticket references. Values come from what analysis
found in that customer's own mail, never from another customer's.
"""

from __future__ import annotations

import re
from collections import defaultdict

from sqlmodel import Session, col, select

from storage.incidents.tables import Incident
from storage.models import AnalysisRecord, Message, Ticket

PLACEHOLDERS = ("name", "first_name", "hosts", "regions", "tickets", "title", "since")
_FIELD = re.compile(r"\{([a-z_]+)(?:\|([^{}]*))?\}")

DEFAULT_BODY = (
    "Hi {first_name|there},\n\n"
    "We are aware of a problem affecting {hosts|some of our services} since {since} and our "
    "engineers are working on it. Your report ({tickets}) is linked to this incident, so "
    "there is no need to write again: we will update you here as soon as we know more.\n\n"
    "We are sorry for the disruption."
)


def unknown_placeholders(text: str) -> list[str]:
    return sorted({m.group(1) for m in _FIELD.finditer(text)} - set(PLACEHOLDERS))


def render(template: str, values: dict[str, str]) -> tuple[str, list[str]]:
    """The template with values filled; the placeholders left without a value."""
    missing: list[str] = []

    def fill(match: re.Match[str]) -> str:
        name, fallback = match.group(1), match.group(2)
        value = values.get(name, "")
        if value:
            return value
        if fallback is not None:
            return fallback
        missing.append(name)
        return match.group(0)

    return _FIELD.sub(fill, template), missing


def customer_values(
    session: Session, incident: Incident, ticket_ids: tuple[int, ...], latest: Ticket
) -> dict[str, str]:
    entities: dict[str, dict[str, str]] = defaultdict(dict)
    rows = session.exec(
        select(AnalysisRecord.entities)
        .join(Message, col(Message.id) == col(AnalysisRecord.message_pk))
        .where(col(Message.ticket_id).in_(ticket_ids))
    ).all()
    for found in rows:
        for e in found or []:
            text = str(e.get("text", "")).strip() if isinstance(e, dict) else ""
            if text:
                entities[str(e.get("label"))].setdefault(text.lower(), text)
    name = (latest.customer_name or "").strip()
    since = incident.started_at or incident.declared_at
    return {
        "name": name,
        "first_name": name.split()[0] if name else "",
        "hosts": _listing(list(entities["HOSTNAME"].values())[:3]),
        "regions": _listing(list(entities["CLOUD_REGION"].values())[:3]),
        "tickets": ", ".join(f"[#{t}]" for t in ticket_ids),
        "title": incident.title,
        "since": f"{since:%H:%M} UTC on {since:%d %b}",
    }


def _listing(items: list[str]) -> str:
    return (
        items[0]
        if len(items) == 1
        else ", ".join(items[:-1]) + (f" and {items[-1]}" if items else "")
    )


def reply_subject(subject: str) -> str:
    subject = subject.strip() or "Your support request"
    return subject if subject.lower().startswith("re:") else f"Re: {subject}"
