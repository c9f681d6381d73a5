"""One incident as ops see it: its tickets, its updates, and tickets that look like it.

`IncidentPage` holds the incident read last, lays out the screen, loads in a thread
worker and draws what it read; the acts on the incident (`incident`) build on it, as
the queue's acts build on its paging. Subjects, addresses and the title quote customer
mail, so every one of them goes through `safe_text`. The worker messages live here
under the `incident_screen` namespace so handlers keep their names in either module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from sqlmodel import Session
from textual import work
from textual.app import ComposeResult
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from review_tui.incident_board import IncidentDetail, read_detail, span, spark
from review_tui.widgets.incident_list import STATUS_STYLES
from review_tui.widgets.safe_text import one_line, safe_line
from storage.incidents.tables import IncidentNotice

if TYPE_CHECKING:
    from review_tui.app import ReviewApp

__all__ = ["IncidentPage"]

MAX_SUGGESTED_SHOWN = 4


class IncidentPage(Screen[None]):
    """The incident's state, layout and loading."""

    class Loaded(Message, namespace="incident_screen"):
        def __init__(self, detail: IncidentDetail) -> None:
            super().__init__()
            self.detail = detail

    class Done(Message, namespace="incident_screen"):
        """A write finished (or failed): say so and read the incident again."""

        def __init__(self, text: str, *, error: bool = False) -> None:
            super().__init__()
            self.text = text
            self.error = error

    def __init__(self, incident_id: int) -> None:
        super().__init__()
        self.incident_id = incident_id
        self.detail: IncidentDetail | None = None

    @property
    def review(self) -> ReviewApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("reading the incident…", id="incident-head", markup=False)
        table: DataTable[Text] = DataTable(id="incident-tickets", cursor_type="row")
        table.add_columns("ticket", "customer", "subject", "attached")
        yield table
        yield Static("", id="incident-suggested", markup=False)
        yield Static("", id="incident-notices", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        self.load()

    def on_screen_resume(self) -> None:
        if self.detail is not None:
            self.load()

    @work(thread=True, exclusive=True, group="incident-load")
    def load(self) -> None:
        try:
            with Session(self.review.reader) as session:
                detail = read_detail(session, self.incident_id, now=self.review.settings.clock())
        except Exception as exc:  # a ReviewError (no such incident) or a read failure
            self.post_message(self.Done(f"could not read the incident: {exc}", error=True))
            return
        self.post_message(self.Loaded(detail))

    def on_incident_screen_loaded(self, event: Loaded) -> None:
        self.detail = event.detail
        self._draw_head(event.detail)
        self._draw_tickets(event.detail)
        self._draw_suggested(event.detail)
        self._draw_notices(event.detail)

    def on_incident_screen_done(self, event: Done) -> None:
        self.review.say(event.text, error=event.error)
        if self.detail is not None or not event.error:
            self.load()

    # ------------------------------------------------------------ drawing

    def _draw_head(self, detail: IncidentDetail) -> None:
        incident, view = detail.incident, detail.view
        head = Text(f"Incident #{incident.id} ", style="bold")
        head.append(one_line(incident.title, limit=80), style="bold")
        head.append(f"  [{incident.status}]", style=STATUS_STYLES.get(incident.status, "bold"))
        facts = (
            f"{len(view.customers)} customers · {len(view.tickets)} tickets · "
            f"{span(detail.times)} · declared by {incident.declared_by}"
        )
        head.append("\n")
        head.append(one_line(facts, limit=100))
        head.append(f"  {spark(detail.times)}", style="cyan")
        self.query_one("#incident-head", Static).update(head)

    def _draw_tickets(self, detail: IncidentDetail) -> None:
        table: DataTable[Text] = self.query_one("#incident-tickets", DataTable)
        keep = table.cursor_row
        table.clear()
        for t in detail.view.tickets:
            table.add_row(
                Text(f"#{t.ticket_id}"),
                safe_line(t.customer, limit=36),
                safe_line(t.subject, limit=50),
                safe_line(f"{t.attached_by}: {t.reason}", limit=40, style="dim"),
                key=str(t.ticket_id),
            )
        if table.row_count:
            table.move_cursor(row=min(keep, table.row_count - 1))

    def _draw_suggested(self, detail: IncidentDetail) -> None:
        box = self.query_one("#incident-suggested", Static)
        found = detail.suggested
        if not found:
            box.update(Text("No new tickets look like this incident.", style="dim"))
            return
        out = Text(
            f"{len(found)} new {'ticket looks' if len(found) == 1 else 'tickets look'} "
            "like this incident — a attaches them all:",
            style="bold yellow",
        )
        for s in found[:MAX_SUGGESTED_SHOWN]:
            out.append("\n  ")
            out.append_text(safe_line(f"#{s.ticket_id} {s.customer} — {s.subject}", limit=110))
        if len(found) > MAX_SUGGESTED_SHOWN:
            out.append(f"\n  … and {len(found) - MAX_SUGGESTED_SHOWN} more", style="dim")
        box.update(out)

    def _draw_notices(self, detail: IncidentDetail) -> None:
        box = self.query_one("#incident-notices", Static)
        notices = detail.view.notices
        if not notices:
            box.update(Text("No update written yet: n writes one.", style="dim"))
            return
        out = Text()
        for number, notice in enumerate(notices, start=1):
            if number > 1:
                out.append("\n")
            out.append_text(notice_line(number, notice))
        box.update(out)


def notice_line(number: int, notice: IncidentNotice) -> Text:
    out = Text(f"Update {number} ", style="bold")
    out.append(f"[{notice.status}]", style=STATUS_STYLES.get(notice.status, "bold"))
    out.append_text(
        safe_line(f" · written by {notice.written_by} {notice.written_at:%a %H:%M} UTC")
    )
    if notice.released_at is None:
        out.append(" · not released: p previews, R releases", style="bold yellow")
    else:
        who = f" · released by {notice.released_by} {notice.released_at:%a %H:%M} UTC"
        out.append_text(safe_line(f"{who} to {notice.recipients} customers"))
    return out
