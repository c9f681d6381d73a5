"""The incidents screen: what is declared, and the bursts nobody has declared yet.

During an outage many customers write about one failure; ops turn it into one incident
and answer everyone with one reviewed notice. This screen is where that starts: the
declared incidents first (with the new tickets that look like theirs), then the
candidates found in the last 72 hours. `d` on a candidate asks for a title (prefilled
from its evidence; enter accepts) and opens the new incident. The list is read in a
thread worker, like every screen's database work, and re-read on return.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from rich.text import Text
from sqlmodel import Session
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, OptionList, Static

from nlp.incidents import Candidate
from review_tui.incident_board import Board, read_board, title_for
from review_tui.screens.dialogs import PromptScreen
from review_tui.widgets.incident_list import IncidentList
from review_tui.widgets.safe_text import one_line
from storage.incidents.ops import declare
from storage.review.types import ReviewError

if TYPE_CHECKING:
    from review_tui.app import ReviewApp

__all__ = ["IncidentsScreen"]


def _title(text: str) -> str:
    if not text.strip():
        raise ValueError("an incident needs a title")
    return text.strip()


class IncidentsScreen(Screen[None]):
    HELP_TITLE = "Keys — incidents"
    BINDINGS = [
        Binding("escape", "back", "Back", id="incidents.back"),
        Binding("enter", "open", "Open", priority=True, id="incidents.open"),
        Binding("d", "declare", "Declare", id="incidents.declare"),
        Binding("r", "reload", "Refresh", id="incidents.refresh"),
        Binding("j", "cursor('down')", "Down", show=False, id="incidents.down"),
        Binding("k", "cursor('up')", "Up", show=False, id="incidents.up"),
    ]

    class Loaded(Message):
        def __init__(self, board: Board) -> None:
            super().__init__()
            self.board = board

    class Declared(Message):
        def __init__(self, incident_id: int) -> None:
            super().__init__()
            self.incident_id = incident_id

    class Failed(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self) -> None:
        super().__init__()
        self.loaded = False

    @property
    def review(self) -> ReviewApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("reading incidents…", id="incidents-status", markup=False)
        yield IncidentList(id="incidents")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(IncidentList).focus()
        self.load()

    def on_screen_resume(self) -> None:
        if self.loaded:
            self.load()

    def action_reload(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="incidents-load")
    def load(self) -> None:
        try:
            with Session(self.review.reader) as session:
                board = read_board(session, now=self.review.settings.clock())
        except Exception as exc:  # shown; the screen keeps what it had
            self.post_message(self.Failed(f"could not read incidents: {exc}"))
            return
        beside = self.review.settings.metrics_beside
        if beside is not None and board.spans():
            try:
                board = dataclasses.replace(board, metrics=tuple(beside(board.spans())))
            except Exception as exc:  # metrics are extra: the incidents still show
                self.post_message(self.Failed(f"could not read metrics: {exc}"))
        self.post_message(self.Loaded(board))

    def on_incidents_screen_loaded(self, event: Loaded) -> None:
        self.loaded = True
        board = event.board
        self.query_one(IncidentList).show(board)
        now = self.review.settings.clock()
        open_ = sum(1 for s in board.incidents if s.incident.status != "resolved")
        n = len(board.candidates)
        self.query_one("#incidents-status", Static).update(
            Text(
                f"{len(board.incidents)} declared ({open_} open) · {n} "
                f"{'candidate' if n == 1 else 'candidates'} in the 72 hours to "
                f"{now:%a %H:%M} UTC · escape goes back"
            )
        )

    def on_incidents_screen_failed(self, event: Failed) -> None:
        self.review.say(event.text, error=True)

    def action_cursor(self, direction: str) -> None:
        listing = self.query_one(IncidentList)
        listing.action_cursor_down() if direction == "down" else listing.action_cursor_up()

    def action_back(self) -> None:
        self.dismiss(None)

    @on(OptionList.OptionSelected, "#incidents")
    def selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        listing = self.query_one(IncidentList)
        incident_id = listing.current_incident()
        if incident_id is not None:
            self._open(incident_id)
        elif listing.current_candidate() is not None:
            self.action_declare()

    def _open(self, incident_id: int) -> None:
        from review_tui.screens.incident import IncidentScreen

        self.app.push_screen(IncidentScreen(incident_id))

    def action_declare(self) -> None:
        candidate = self.query_one(IncidentList).current_candidate()
        if candidate is None:
            self.review.say("d declares a candidate: move to one under Candidates", error=True)
            return
        self.app.push_screen(
            PromptScreen(
                "Declare an incident",
                one_line(f"{candidate.describe()} — enter declares, escape cancels", limit=300),
                _title,
                value=title_for(candidate),
            ),
            lambda title: self._title_given(candidate, title),
        )

    def _title_given(self, candidate: Candidate, title: str | None) -> None:
        if title is not None:
            self.declare(candidate, title)

    @work(thread=True, group="incidents-write")
    def declare(self, candidate: Candidate, title: str) -> None:
        try:
            incident_id = declare(
                self.review.engine,
                title=title,
                actor=self.review.settings.actor,
                ticket_ids=candidate.ticket_ids,
                keys=[e.key for e in candidate.evidence],
                candidate_ref=candidate.ref,
                started_at=candidate.start,
            )
        except ReviewError as exc:
            self.post_message(self.Failed(str(exc)))
            return
        except Exception as exc:
            self.post_message(self.Failed(f"not declared: {exc}"))
            return
        self.post_message(self.Declared(incident_id))

    def on_incidents_screen_declared(self, event: Declared) -> None:
        self.review.say(f"declared incident #{event.incident_id}")
        self._open(event.incident_id)
