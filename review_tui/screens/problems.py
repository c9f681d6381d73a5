"""Shunted and suppressed mail and failed sends, with their reasons, and a retry for each.

Nothing is ever dropped: a message the pipeline could not handle, mail held back as an
auto-reply, bounce or loop (with the reason it was taken for one), or a reply the relay
refused, waits here until a rep re-queues it (analysis runs again, or the sender tries
again). `f` shows only the suppressed mail, or everything again. An `uncertain` send
may already have reached the customer, so its retry asks for a confirmation that says so.
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


KIND_STYLES = {"shunted": "yellow", "suppressed": "cyan"}


class ProblemsScreen(Screen[None]):
    HELP_TITLE = "Keys — shunted, suppressed and failed"
    BINDINGS = [
        Binding("j", "cursor('down')", "Down", show=False, id="problems.down"),
        Binding("k", "cursor('up')", "Up", show=False, id="problems.up"),
        Binding("r", "retry", "Retry", id="problems.retry"),
        Binding("f", "only_suppressed", "Suppressed only/all", id="problems.suppressed"),
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

    def __init__(self, *, only: str | None = None) -> None:
        super().__init__()
        self.only = only  # a kind ("suppressed") to show alone, or None for all
        self.problem_rows: list[rv.ProblemRow] = []
        self.requested = 0  # only the newest load fills the table (see QueueScreen)

    @property
    def review(self) -> ReviewApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="problems-title")
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
        self._title()
        self.reload()

    def _title(self) -> None:
        what = (
            "Suppressed mail: auto-replies, bounces and loops (r analyses one again)"
            if self.only == "suppressed"
            else "Shunted and suppressed messages and failed sends (r retries)"
        )
        self.query_one("#problems-title", Static).update(Text(what, style="bold"))

    def action_only_suppressed(self) -> None:
        self.only = None if self.only == "suppressed" else "suppressed"
        self._title()
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
        rows = [r for r in event.rows if self.only is None or r.kind == self.only]
        self.problem_rows = rows
        table = self.query_one(DataTable)
        table.clear()
        for row in rows:
            table.add_row(
                Text(row.kind, style=KIND_STYLES.get(row.kind, "red")),
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
        if row.kind in ("shunted", "suppressed"):
            lines = [safe_line(f"Analyse message {row.id} again: {row.subject}")]
            if row.kind == "suppressed":
                lines.append(safe_line(f"It was held back as: {row.reason}", style="bold"))
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
        if row.kind in ("shunted", "suppressed"):
            n = rv.requeue_shunted(engine=engine, message_ids=[row.id], actor=actor)
            text = f"message {row.id} re-queued" if n else f"message {row.id} had already moved on"
        else:
            n = rv.retry_outbox(engine=engine, outbox_ids=[row.id], actor=actor)
            text = f"send {row.id} queued again" if n else f"send {row.id} had already moved on"
        self.post_message(self.Done(text))

    def on_problems_screen_done(self, event: Done) -> None:
        self.review.say(event.text)
        self.reload()

    def action_back(self) -> None:
        self.app.pop_screen()
