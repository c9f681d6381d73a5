"""What the desk owes: breached reply targets and who has waited longest, per team.

Read by `supportgate status` (and its JSON, for alerting). A ticket is breached when
its reply is due and the due time has passed; the oldest waiting ticket of a team is
the one whose customer has waited longest for us, by the mail's own time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from storage.models import Ticket

WAITING = ("open",)


def desk_report(session: Session, *, now: datetime, limit: int = 50) -> dict[str, Any]:
    due = session.exec(
        select(Ticket)
        .where(col(Ticket.status).in_(WAITING), col(Ticket.reply_due).is_not(None))
        .where(col(Ticket.reply_due) < now)
        .order_by(col(Ticket.reply_due))
    ).all()
    waiting = session.exec(
        select(Ticket)
        .where(col(Ticket.status).in_(WAITING), col(Ticket.waiting_since).is_not(None))
        .order_by(col(Ticket.waiting_since))
    ).all()
    oldest: dict[str, dict[str, Any]] = {}
    for ticket in waiting:
        team = ticket.team or "(no team)"
        if team in oldest or ticket.waiting_since is None:
            continue
        oldest[team] = {
            "ticket": ticket.id,
            "owner": ticket.owner,
            "waiting_since": ticket.waiting_since.isoformat(),
            "waiting_seconds": round((now - ticket.waiting_since).total_seconds()),
        }
    return {
        "breached_count": len(due),
        "breached": [
            {
                "ticket": t.id,
                "team": t.team,
                "owner": t.owner,
                "priority": t.priority,
                "due": t.reply_due.isoformat() if t.reply_due else None,
                "overdue_seconds": round((now - t.reply_due).total_seconds()) if t.reply_due else 0,
            }
            for t in due[:limit]
        ],
        "oldest_waiting_by_team": oldest,
    }
