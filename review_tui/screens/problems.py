"""Shunted mail and failed sends, with their reasons, and a retry for each.

Nothing is ever dropped: a message the pipeline could not handle, or a reply the relay
refused, waits here until a rep re-queues it (analysis runs again, or the sender tries
again). An `uncertain` send may already have reached the customer, so its retry asks
for a confirmation that says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from sqlmodel import Session
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from review_tui.screens.dialogs import ConfirmScreen
from review_tui.widgets.safe_text import safe_line
from storage import review as rv

if TYPE_CHECKING:
    from review_tui.app import ReviewApp


class ProblemsScreen(Screen[None]):
    BINDINGS = [
        Binding("j", "cursor('down')", "Down", show=False, id="problems.down"),
        Binding("k", "cursor('up')", "Up", show=False, id="problems.up"),
        Binding("r", "retry", "Retry", id="problems.retry"),
        Binding("q,escape", "back", "Back", id="problems.back"),
    ]

    class Loaded(Message):
        def __init__(self, rows: list[rv.ProblemRow], request: int) -> None:
            super().__init__()
            self.rows = rows
            self.request = request

    class Done(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self) -> None:
        super().__init__()
        self.problem_rows: list[rv.ProblemRow] = []
        self.requested = 0  # only the newest load fills the table (see QueueScreen)

    @property
    def review(self) -> ReviewApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(Text("Shunted messages and failed sends (r retries)", style="bold"))
        yield DataTable(id="problems", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, label, width in (
            ("kind", "Kind", 9),
            ("at", "When", 17),
            ("who", "Who", 28),
            ("subject", "Subject", 30),
            ("reason", "Reason", 60),
        ):
            table.add_column(Text(label), key=key, width=width)
        self.reload()

    def reload(self) -> None:
        self.requested += 1
        self.load(self.requested)

    @work(thread=True, exclusive=True, group="problems-load")
    def load(self, request: int) -> None:
        with Session(self.review.reader) as session:
            rows = rv.list_problems(session=session)
        self.post_message(self.Loaded(rows, request))

    def on_problems_screen_loaded(self, event: Loaded) -> None:
        if event.request != self.requested:
            return
        self.problem_rows = event.rows
        table = self.query_one(DataTable)
        table.clear()
        for row in event.rows:
            table.add_row(
                Text(row.kind, style="red" if row.kind != "shunted" else "yellow"),
                Text(row.at.strftime("%Y-%m-%d %H:%M")),
                safe_line(row.who, limit=60),
                safe_line(row.subject, limit=80),
                safe_line(row.reason, limit=200),
                key=f"{row.kind}:{row.id}",
            )

    def action_cursor(self, direction: str) -> None:
        table = self.query_one(DataTable)
        table.action_cursor_down() if direction == "down" else table.action_cursor_up()

    def current(self) -> rv.ProblemRow | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        return self.problem_rows[table.cursor_row]

    def action_retry(self) -> None:
        row = self.current()
        if row is None:
            return
        if row.kind == "shunted":
            lines = [safe_line(f"Analyse message {row.id} again: {row.subject}")]
        else:
            lines = [safe_line(f"Send to {row.who} again: {row.subject}")]
            if row.kind == "uncertain":
                lines.append(Text("It may already have been delivered once.", style="bold red"))
        self.app.push_screen(ConfirmScreen("Retry?", lines), lambda yes: self._confirmed(yes, row))

    def _confirmed(self, yes: bool | None, row: rv.ProblemRow) -> None:
        if yes:
            self.retry(row)

    @work(thread=True, group="problems-write")
    def retry(self, row: rv.ProblemRow) -> None:
        engine, actor = self.review.engine, self.review.settings.actor
        if row.kind == "shunted":
            n = rv.requeue_shunted(engine=engine, message_ids=[row.id], actor=actor)
            text = f"message {row.id} re-queued" if n else f"message {row.id} was not shunted"
        else:
            n = rv.retry_outbox(engine=engine, outbox_ids=[row.id], actor=actor)
            text = f"send {row.id} queued again" if n else f"send {row.id} had already moved on"
        self.post_message(self.Done(text))

    def on_problems_screen_done(self, event: Done) -> None:
        self.review.say(event.text)
        self.reload()

    def action_back(self) -> None:
        self.app.pop_screen()
