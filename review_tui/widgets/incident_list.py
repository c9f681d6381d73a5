"""The incidents list: declared incidents, then the candidates nobody has declared yet.

Ops look here during an outage, so an entry is readable at a glance in three lines:
what it is, how big (customers, tickets, time span, suggestions) and its shape (a
sparkline of mails per ten minutes). Titles and evidence values quote customer mail
(a host, a log line), so every such string passes through `safe_text`. Headings are
options that cannot be highlighted, as in the bulk review's list.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from nlp.incidents import Candidate
from review_tui.incident_board import Board, IncidentSummary, span, spark
from review_tui.widgets.safe_text import one_line

__all__ = ["IncidentList"]

STATUS_STYLES = {
    "investigating": "bold red",
    "identified": "bold yellow",
    "monitoring": "bold cyan",
    "resolved": "bold green",
}
_WIDTH = 112  # an entry fits a 120-column terminal with the list's border and padding


def _tickets(n: int) -> str:
    return f"{n} {'ticket' if n == 1 else 'tickets'}"


def _lines(*parts: Text) -> Text:
    out = Text(no_wrap=True, overflow="ellipsis")
    for i, part in enumerate(parts):
        if i:
            out.append("\n")
        out.append_text(part)
    return out


def incident_text(summary: IncidentSummary) -> Text:
    incident = summary.incident
    head = Text(f"#{incident.id} ", style="bold")
    head.append(one_line(incident.title, limit=_WIDTH - 24), style="bold")
    head.append(f"  [{incident.status}]", style=STATUS_STYLES.get(incident.status, "bold"))
    n_customers, n_tickets = len(summary.customers), len(summary.ticket_ids)
    facts = (
        f"   {n_customers} {'customer' if n_customers == 1 else 'customers'} · "
        f"{_tickets(n_tickets)} · {span(summary.times)}"
    )
    size = Text(facts)
    if summary.suggested:
        size.append(f" · {len(summary.suggested)} suggested", style="bold yellow")
    return _lines(head, size, Text(f"   {spark(summary.times)}", style="cyan"))


def candidate_text(candidate: Candidate) -> Text:
    # Values are cut so that every key's ticket count stays on screen.
    keys = " · ".join(
        f"{kind}={one_line(value, limit=48)} ({_tickets(e.tickets)})"
        for e in candidate.evidence[:4]
        for (kind, value) in [e.key]
    )
    return _lines(
        Text(one_line(candidate.describe(), limit=_WIDTH), style="bold"),
        Text(f"   {spark(candidate.times)}", style="cyan"),
        Text(one_line(f"   {keys}", limit=_WIDTH), style="dim"),
    )


class IncidentList(OptionList):
    """Options are `incident:<id>` and `candidate:<index>`; headings are disabled."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.board = Board((), ())

    def show(self, board: Board) -> None:
        keep = self.highlighted_option.id if self.highlighted_option else None
        self.board = board
        options: list[Option] = [
            Option(
                Text(f"Declared incidents ({len(board.incidents)}) — enter opens", style="bold"),
                id="head:declared",
                disabled=True,
            )
        ]
        options += [
            Option(incident_text(s), id=f"incident:{s.incident.id}") for s in board.incidents
        ]
        if not board.incidents:
            options.append(
                Option(Text("   none declared", style="dim"), id="none:1", disabled=True)
            )
        options.append(
            Option(
                Text(f"Candidates ({len(board.candidates)}) — d declares one", style="bold"),
                id="head:candidates",
                disabled=True,
            )
        )
        options += [
            Option(candidate_text(c), id=f"candidate:{i}") for i, c in enumerate(board.candidates)
        ]
        if not board.candidates:
            quiet = "   no undeclared candidates: no new burst of shared failures in 72 hours"
            options.append(Option(Text(quiet, style="dim"), id="none:2", disabled=True))
        if board.metrics:
            options.append(
                Option(Text("Metric spikes beside them", style="bold"), id="head:metrics",
                       disabled=True)
            )  # fmt: skip
            options += [
                Option(_lines(Text(one_line(what, limit=_WIDTH)),
                              Text(f"   {line}", style="magenta")),
                       id=f"metric:{i}", disabled=True)
                for i, (what, line) in enumerate(board.metrics)
            ]  # fmt: skip
        self.set_options(options)
        ids = [o.id for o in options]
        if keep in ids:
            self.highlighted = ids.index(keep)
        else:
            self.action_first()

    def current_incident(self) -> int | None:
        option = self.highlighted_option
        kind, _, value = (option.id or "" if option else "").partition(":")
        return int(value) if kind == "incident" else None

    def current_candidate(self) -> Candidate | None:
        option = self.highlighted_option
        kind, _, value = (option.id or "" if option else "").partition(":")
        return self.board.candidates[int(value)] if kind == "candidate" else None
