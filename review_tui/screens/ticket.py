"""The ticket screen: the conversation, the evidence, and the draft in an editor.

Opening a ticket takes a lease for the rep (others see who holds it); leaving gives it
back. Saving is a compare-and-set on the draft version: if another rep saved first the
rep sees both texts and chooses. Release writes outbox rows through storage and only
after a one-key confirmation that shows recipient and subject; the UI never sends.

The screen is built in layers, one concern per module: `ticket_layout` (the widgets and
how a ticket is drawn), `ticket_writes` (release, discard, take over, leave),
`ticket_editing` (edit, save, relabel, re-draft) and this module (key bindings, loading
and the lease). Worker messages live in `ticket_events`.
"""

from __future__ import annotations

from sqlmodel import Session
from textual import work
from textual.binding import Binding
from textual.widgets import TextArea

from review_tui.screens import ticket_events as events
from review_tui.screens.ticket_editing import TicketEditing
from review_tui.widgets.safe_text import clean
from storage import review as rv

__all__ = ["TicketScreen"]


class TicketScreen(TicketEditing):
    HELP_TITLE = "Keys — a ticket"
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", priority=True, id="ticket.save"),
        Binding("escape", "leave_editor", "Stop editing", id="ticket.leave_editor"),
        Binding("e", "edit", "Edit draft", id="ticket.edit"),
        Binding("i", "intent", "Intent", id="ticket.intent"),
        Binding("a", "article", "KB article", id="ticket.article"),
        Binding("r", "release", "Release", id="ticket.release"),
        Binding("d", "discard", "Discard", id="ticket.discard"),
        Binding("o", "take_over", "Take over", id="ticket.take_over"),
        Binding("q", "back", "Back", id="ticket.back"),
    ]

    # The worker messages, also reachable as `TicketScreen.Loaded` and so on.
    Loaded = events.Loaded
    LeaseChanged = events.LeaseChanged
    Saved = events.Saved
    Conflict = events.Conflict
    Finished = events.Finished
    Changed = events.Changed
    Failed = events.Failed

    # While editing, keys type into the draft: only saving and stopping act (and show).
    READING_ACTIONS = frozenset(
        {"edit", "intent", "article", "release", "discard", "take_over", "back"}
    )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "save":
            return self.editing or self.is_dirty()
        if action == "leave_editor":
            return self.editing
        return not (self.editing and action in self.READING_ACTIONS)

    def on_mount(self) -> None:
        self.load()
        every = max(5.0, self.review.settings.lease_minutes * 60 / 3)
        self.set_interval(every, self.renew_lease)

    @work(thread=True, exclusive=True, group="ticket-lease")
    def renew_lease(self) -> None:
        """Keep holding the ticket while it is open; notice if someone took it over."""
        if self.view is None or self.lease is None or not self.lease.mine:
            return
        settings = self.review.settings
        try:
            lease = rv.acquire_lease(
                engine=self.review.engine,
                ticket_id=self.view.ticket.id or 0,
                actor=settings.actor,
                minutes=settings.lease_minutes,
            )
        except Exception:  # the next renewal tries again; release re-checks anyway
            return
        self.post_message(events.LeaseChanged(lease))

    def on_ticket_screen_lease_changed(self, event: events.LeaseChanged) -> None:
        self.lease = event.lease
        self._render_lease()

    # ------------------------------------------------------------ loading

    def load(self) -> None:
        """(Re)load the ticket; only the newest of overlapping loads is shown."""
        self.requested += 1
        self._load(self.requested)

    @work(thread=True, exclusive=True, group="ticket-load")
    def _load(self, request: int) -> None:
        settings = self.review.settings
        try:
            with Session(self.review.reader) as session:
                view = rv.load_ticket(session=session, draft_id=self.draft_id)
            lease = rv.acquire_lease(
                engine=self.review.engine,
                ticket_id=view.ticket.id or 0,
                actor=settings.actor,
                minutes=settings.lease_minutes,
            )
        except Exception as exc:
            self.post_message(events.Failed(f"cannot open draft {self.draft_id}: {exc}"))
            return
        self.post_message(events.Loaded(view, lease, request))

    def on_ticket_screen_loaded(self, event: events.Loaded) -> None:
        if event.request != self.requested:
            return  # a newer load was asked for after this one started
        self.view, self.lease = event.view, event.lease
        draft = event.view.draft
        if self.is_dirty():
            self.review.say("reloaded the evidence; your unsaved edits are kept")
        else:
            self.version = draft.version
            self.saved_body = clean(draft.body)
            editor = self.query_one("#draft", TextArea)
            editor.load_text(self.saved_body)
        self._render_view(event.view)
        if self.start_editing:
            self.start_editing = False
            self.action_edit()

    def on_ticket_screen_failed(self, event: events.Failed) -> None:
        self.review.say(event.text, error=True)
        if self.view is None:
            self.app.pop_screen()
        elif event.reload:
            self.load()
