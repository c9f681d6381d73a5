"""How the desk's fields read on screen: time left to reply, priority, owner, the reasons.

One place for these so the queue's cells and the ticket's Why panel never disagree on
what "due in 3h10" or "1h05 late" means. Pure functions to `Text`; the owner, team,
routing rule and priority reason come from config and reps, but go through `safe_text`
like everything else that was typed by someone.
"""

from __future__ import annotations

from datetime import datetime

from rich.text import Text

from review_tui.widgets.safe_text import safe_line
from storage.models import Ticket

PRIORITY_STYLES = {"urgent": "bold red", "high": "yellow", "normal": "", "low": "dim"}
STATUS_STYLES = {
    "open": "green",
    "pending": "cyan",
    "solved": "dim",
    "closed": "dim",
    "spam": "magenta",
    "merged": "dim",
}
LATE = "bold red"
# The queue's views (storage.review.VIEWS) as the tabs name them, with their keys.
VIEW_LABELS = {
    "mine": "Mine",
    "all": "All",
    "pending": "Pending",
    "solved": "Solved",
    "spam": "Spam",
}


def span(seconds: int) -> str:
    """A duration in at most five characters: 45s, 42m, 3h10, 2d."""
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 24:
        return f"{hours}h{minutes % 60:02d}"
    return f"{hours // 24}d"


def due_text(due: datetime | None, now: datetime) -> Text:
    """Time left until our reply is due; "-1h05 late" in red once breached; "" if none."""
    if due is None:
        return Text("")
    left = int((due - now).total_seconds())
    if left < 0:
        return Text(f"-{span(-left)} late", style=LATE)
    return Text(span(left))


def priority_text(priority: str | None) -> Text:
    return safe_line(priority or "", style=PRIORITY_STYLES.get(priority or "", ""), limit=12)


def owner_text(owner: str | None, team: str | None) -> Text:
    """The owner; a ticket nobody owns shows its team, dimmed ("team billing")."""
    if owner:
        return safe_line(owner, limit=40)
    return safe_line(f"team {team}", style="dim", limit=40) if team else Text("")


def status_text(status: str) -> Text:
    return safe_line(status, style=STATUS_STYLES.get(status, ""), limit=20)


def desk_lines(ticket: Ticket, now: datetime) -> Text:
    """The Why panel's desk part: status, who has it and why, priority and why, due."""
    out = Text()
    out.append("status ", style="dim")
    out.append_text(status_text(ticket.status))
    if ticket.linked_ticket:
        out.append(f" · linked to #{ticket.linked_ticket}", style="dim")
    out.append("\nowner ", style="dim")
    out.append_text(safe_line(ticket.owner or "nobody", limit=60))
    out.append(" · team ", style="dim")
    out.append_text(safe_line(ticket.team or "none", limit=60))
    out.append("\nrouted by ", style="dim")
    out.append_text(safe_line(ticket.routed_by or "no routing rule matched", limit=200))
    out.append("\npriority ", style="dim")
    out.append_text(priority_text(ticket.priority) if ticket.priority else Text("not set"))
    if ticket.priority_by:
        out.append_text(safe_line(f" ({ticket.priority_by})", style="dim", limit=200))
    out.append("\nreply ", style="dim")
    if ticket.reply_due is None:
        out.append("nothing owed", style="dim")
    else:
        left = due_text(ticket.reply_due, now)
        out.append_text(left if left.plain.endswith("late") else Text(f"due in {left.plain}"))
        out.append(f" ({ticket.reply_due:%Y-%m-%d %H:%M} UTC)", style="dim")
    return out


def view_tabs(counts: dict[str, int], current: str | None) -> Text:
    """`1 Mine 12 · 2 All 40 · 3 Pending 3 …`, the current view highlighted."""
    out = Text(no_wrap=True, overflow="ellipsis")
    for n, (view, label) in enumerate(VIEW_LABELS.items(), start=1):
        if n > 1:
            out.append(" · ", style="dim")
        style = "bold reverse" if view == current else ""
        out.append(f" {n} {label} {counts.get(view, 0):,} ", style=style)
    return out
