"""The acts on one incident: status, tickets, tags, and its notice from writing to release.

One notice answers every customer of the incident, so the path from a declared
incident to customers reading an update is short (n writes, ctrl+s saves, p shows
every message, R asks for the number of recipients) and guarded where it cannot be
undone: the release happens only when the typed number matches, and storage checks it
again inside the release transaction, with the rep's name as the one who released it.
Every write runs in a thread worker and reports through `Done`; storage's refusals are
shown to the rep, never raised.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import Session
from textual import work
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from review_tui.incident_board import next_status
from review_tui.screens.dialogs import ConfirmScreen, PromptScreen
from review_tui.screens.incident_page import IncidentPage
from review_tui.screens.notice import NoticeEditorScreen, NoticePreviewScreen
from review_tui.screens.queue_paging import QueuePaging
from review_tui.widgets.safe_text import one_line, safe_line
from storage.incidents.notice import NoticeMessage, preview, release_notice
from storage.incidents.ops import attach, detach, set_status
from storage.incidents.overview import open_draft_ids
from storage.review.types import ReviewError

__all__ = ["IncidentScreen"]


class IncidentScreen(IncidentPage):
    HELP_TITLE = "Keys — an incident"
    BINDINGS = [
        Binding("escape", "back", "Back", id="incident.back"),
        Binding("n", "notice", "Write update", id="incident.notice"),
        Binding("p", "preview", "Preview", id="incident.preview"),
        Binding("R", "release", "Release", id="incident.release"),
        Binding("s", "status", "Next status", id="incident.status"),
        Binding("a", "attach", "Attach suggested", id="incident.attach"),
        Binding("x", "detach", "Detach", id="incident.detach"),
        Binding("t", "tag", "Tag drafts", id="incident.tag"),
        Binding("j", "cursor('down')", "Down", show=False, id="incident.down"),
        Binding("k", "cursor('up')", "Up", show=False, id="incident.up"),
    ]

    class Previewed(Message, namespace="incident_screen"):
        """The pending update read as the messages it becomes; `then` says what to do."""

        def __init__(self, notice_id: int, status: str, messages: list[NoticeMessage],
                     then: str) -> None:  # fmt: skip
            super().__init__()
            self.notice_id, self.status = notice_id, status
            self.messages, self.then = messages, then

    class DraftsFound(Message, namespace="incident_screen"):
        def __init__(self, draft_ids: list[int]) -> None:
            super().__init__()
            self.draft_ids = draft_ids

    def action_back(self) -> None:
        self.dismiss(None)

    def action_cursor(self, direction: str) -> None:
        table = self.query_one(DataTable)
        table.action_cursor_down() if direction == "down" else table.action_cursor_up()

    def _actor(self) -> str:
        return self.review.settings.actor

    def _write(self, act: Callable[[], Any], success: Callable[[Any], str]) -> None:
        """Run a storage write (in a worker thread) and report the outcome."""
        try:
            result = act()
        except ReviewError as exc:
            self.post_message(self.Done(str(exc), error=True))
        except Exception as exc:  # a storage failure: nothing was changed
            self.post_message(self.Done(f"failed: {exc}", error=True))
        else:
            self.post_message(self.Done(success(result)))

    # ------------------------------------------------------------ the incident

    def action_status(self) -> None:
        if self.detail is not None:
            self.change_status(next_status(self.detail.incident.status))

    @work(thread=True, group="incident-write")
    def change_status(self, status: str) -> None:
        self._write(
            lambda: set_status(self.review.engine, self.incident_id, status, actor=self._actor()),
            lambda _: f"status: {status} (the next update announces it)",
        )

    def action_attach(self) -> None:
        if self.detail is None or not self.detail.suggested:
            self.review.say("no suggested tickets to attach")
            return
        self.attach_suggested([s.ticket_id for s in self.detail.suggested])

    @work(thread=True, group="incident-write")
    def attach_suggested(self, ticket_ids: list[int]) -> None:
        self._write(
            lambda: attach(self.review.engine, self.incident_id, ticket_ids, actor=self._actor()),
            lambda added: f"attached {len(added)} tickets",
        )

    def action_detach(self) -> None:
        table = self.query_one(DataTable)
        if self.detail is None or not table.row_count:
            return
        row = self.detail.view.tickets[table.cursor_row]
        self.app.push_screen(
            ConfirmScreen(
                f"Detach ticket #{row.ticket_id} from this incident?",
                [safe_line(f"{row.customer} — {row.subject}", limit=300)],
            ),
            lambda yes: self._detach_confirmed(yes, row.ticket_id),
        )

    def _detach_confirmed(self, yes: bool | None, ticket_id: int) -> None:
        if yes:
            self.detach_ticket(ticket_id)

    @work(thread=True, group="incident-write")
    def detach_ticket(self, ticket_id: int) -> None:
        self._write(
            lambda: detach(self.review.engine, self.incident_id, [ticket_id], actor=self._actor()),
            lambda _: f"detached ticket #{ticket_id}",
        )

    def action_tag(self) -> None:
        if self.detail is not None:
            self.find_drafts([t.ticket_id for t in self.detail.view.tickets])

    @work(thread=True, exclusive=True, group="incident-drafts")
    def find_drafts(self, ticket_ids: list[int]) -> None:
        try:
            with Session(self.review.reader) as session:
                found = open_draft_ids(session, ticket_ids)
        except Exception as exc:
            self.post_message(self.Done(f"could not read the drafts: {exc}", error=True))
            return
        self.post_message(self.DraftsFound(found))

    def on_incident_screen_drafts_found(self, event: DraftsFound) -> None:
        queue = next((s for s in self.app.screen_stack if isinstance(s, QueuePaging)), None)
        if queue is None:
            self.review.say("the queue is not open", error=True)
            return
        # The queue says how many were tagged and shows them marked.
        queue.post_message(QueuePaging.Tagged(event.draft_ids, f"incident #{self.incident_id}"))

    # ------------------------------------------------------------ the notice

    def action_notice(self) -> None:
        if self.detail is None:
            return
        self.app.push_screen(
            NoticeEditorScreen(
                self.incident_id,
                status=self.detail.incident.status,
                body=self.detail.notice_start,
            ),
            self._notice_closed,
        )

    def _notice_closed(self, saved: int | None) -> None:
        if saved is not None:
            self.load()

    def action_preview(self) -> None:
        self._read_pending("show")

    def action_release(self) -> None:
        self._read_pending("release")

    def _read_pending(self, then: str) -> None:
        pending = self.detail.pending if self.detail is not None else None
        if pending is None:
            self.review.say("no unreleased update: n writes one", error=True)
            return
        self.read_messages(int(pending.id or 0), pending.status, then)

    @work(thread=True, exclusive=True, group="incident-preview")
    def read_messages(self, notice_id: int, status: str, then: str) -> None:
        try:
            with Session(self.review.reader) as session:
                messages = preview(session, notice_id)
        except Exception as exc:
            self.post_message(self.Done(f"cannot preview: {exc}", error=True))
            return
        self.post_message(self.Previewed(notice_id, status, messages, then))

    def on_incident_screen_previewed(self, event: Previewed) -> None:
        if event.then == "show":
            self.app.push_screen(
                NoticePreviewScreen(event.messages, status=event.status),
                lambda choice: self._ask_count(event) if choice == "release" else None,
            )
        else:
            self._ask_count(event)

    def _ask_count(self, event: Previewed) -> None:
        n = len(event.messages)
        blocked = [m for m in event.messages if m.problems]
        if not n or blocked:
            why = "the incident has no customers to notify"
            if blocked:
                why = f"{len(blocked)} messages have unfilled placeholders: p shows them, n edits"
            self.review.say(f"cannot release: {why}", error=True)
            return

        def count(text: str) -> int:
            try:
                typed = int(text.strip())
            except ValueError:
                raise ValueError(f"type the number of recipients ({n})") from None
            if typed != n:
                raise ValueError(
                    f"typed {typed}, but the update goes to {n} customers: "
                    f"nothing was released — type {n}"
                )
            return typed

        first = ", ".join(m.address for m in event.messages[:3])
        more = f" and {n - 3} more" if n > 3 else ""
        self.app.push_screen(
            PromptScreen(
                f"Release the {event.status} update to {n} customers?",
                one_line(f"to {first}{more} — type {n} and press enter; escape cancels", 300),
                count,
            ),
            lambda typed: self._count_typed(event, typed),
        )

    def _count_typed(self, event: Previewed, typed: int | None) -> None:
        if typed is not None:
            self.release(event, typed)

    @work(thread=True, group="incident-write")
    def release(self, event: Previewed, typed: int) -> None:
        settings = self.review.settings
        self._write(
            lambda: release_notice(
                self.review.engine,
                event.notice_id,
                actor=settings.actor,
                confirm_count=typed,
                from_address=settings.from_address,
            ),
            lambda ids: f"released the {event.status} update to {len(ids)} customers",
        )
