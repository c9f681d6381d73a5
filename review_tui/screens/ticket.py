"""The ticket screen: the conversation, the evidence, and the draft in an editor.

Opening a ticket takes a lease for the rep (others see who holds it); leaving gives it
back. On every refresh tick the screen looks at the lease: if another rep took the
ticket over, the rep is told at once, by name, and the screen turns read-only (unsaved
text stays on screen to copy). From then on it only renews a lease it still holds, so
the lease is never quietly taken back; `o` takes it back in the open. Saving is a
compare-and-set on the draft version: if another rep saved first the rep sees both
texts and chooses. Release writes outbox rows through storage and only
after a one-key confirmation that shows recipient and subject; the UI never sends.

The screen is built in layers, one concern per module: `ticket_layout` (the widgets and
how a ticket is drawn), `ticket_writes` (release, discard, take over, leave),
`ticket_editing` (edit, save, relabel, re-draft), `ticket_desk` (status, owner,
priority, merge, split) and this module (key bindings, loading and the lease). Worker
messages live in `ticket_events`.
"""

from __future__ import annotations

import time

from sqlmodel import Session
from textual import work
from textual.binding import Binding
from textual.widgets import Static, TextArea

from review_tui.screens import ticket_events as events
from review_tui.screens.ticket_desk import TicketDesk
from review_tui.widgets.safe_text import clean, safe_line
from storage import review as rv

__all__ = ["TicketScreen"]


class TicketScreen(TicketDesk):
    HELP_TITLE = "Keys — a ticket"
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", priority=True, id="ticket.save"),
        Binding("escape", "leave_editor", "Stop editing", id="ticket.leave_editor"),
        Binding("e", "edit", "Edit draft", id="ticket.edit"),
        Binding("i", "intent", "Intent", id="ticket.intent"),
        Binding("a", "article", "KB article", id="ticket.article"),
        Binding("r", "release", "Release", id="ticket.release"),
        Binding("d", "discard", "Discard", id="ticket.discard"),
        Binding("S", "status('solved')", "Solve", id="ticket.solve"),
        Binding("C", "status('closed')", "Close", id="ticket.close"),
        Binding("X", "status('spam')", "Spam", id="ticket.spam"),
        Binding("O", "status('open')", "Reopen", id="ticket.reopen"),
        Binding("q", "back", "Back", id="ticket.back"),
        Binding("o", "take_over", "Take over", id="ticket.take_over"),
        Binding("A", "take", "Assign me", id="ticket.take"),
        Binding("H", "assign", "Assign…", id="ticket.assign"),
        Binding("P", "priority", "Priority", id="ticket.priority"),
        Binding("M", "merge", "Merge into…", show=False, id="ticket.merge"),
        Binding("B", "split", "Split off (new ticket)", show=False, id="ticket.split"),
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
    DESK_ACTIONS = frozenset({"status", "take", "assign", "priority", "merge", "split"})
    READING_ACTIONS = (
        frozenset({"edit", "intent", "article", "release", "discard", "take_over", "back"})
        | DESK_ACTIONS
    )

    # Acts that change the draft or the ticket: off once the ticket was taken over.
    WRITING_ACTIONS = (
        frozenset({"save", "edit", "intent", "article", "release", "discard"}) | DESK_ACTIONS
    )
    renewed_at = 0.0  # time.monotonic() of the last renewal

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.lost_to is not None and action in self.WRITING_ACTIONS:
            return None  # shown, but disabled: the screen is read-only
        if action == "save":
            return self.editing or self.is_dirty()
        if action == "leave_editor":
            return self.editing
        return not (self.editing and action in self.READING_ACTIONS)

    def on_mount(self) -> None:
        self.load()
        settings = self.review.settings
        renew_every = max(5.0, settings.lease_minutes * 60 / 3)
        # With refresh_seconds 0 (no timer refresh) the lease is still renewed in time.
        self.set_interval(settings.refresh_seconds or renew_every, self.renew_lease)

    @work(thread=True, exclusive=True, group="ticket-lease")
    def renew_lease(self) -> None:
        """Look at the lease each tick; renew it (a third of its length apart) while mine."""
        if self.view is None or not self.held:
            return
        settings, ticket_id = self.review.settings, self.view.ticket.id or 0
        due = time.monotonic() - self.renewed_at >= max(5.0, settings.lease_minutes * 60 / 3)
        try:
            if due and self.lost_to is None:
                lease = rv.renew_lease(
                    engine=self.review.engine,
                    ticket_id=ticket_id,
                    actor=settings.actor,
                    minutes=settings.lease_minutes,
                )
                self.renewed_at = time.monotonic()
            else:
                with Session(self.review.reader) as session:
                    lease = rv.lease_state(
                        session=session, ticket_id=ticket_id, actor=settings.actor
                    )
        except Exception:  # the next tick tries again; release re-checks anyway
            return
        self.post_message(events.LeaseChanged(lease))

    def on_ticket_screen_lease_changed(self, event: events.LeaseChanged) -> None:
        self._apply_lease(event.lease)

    def _apply_lease(self, lease: rv.Lease) -> None:
        lost_before = self.lost_to is not None
        self.lease = lease
        if lease.mine:
            self.held, self.lost_to = True, None
        elif self.held:
            self.lost_to = lease.taken_over_by or "another rep"
            if not lost_before:
                if self.editing:
                    self.action_leave_editor()
                self.review.say(
                    f"ticket #{lease.ticket_id} is being worked on by {self.lost_to}, "
                    "who took it over from you: it is read-only for you now",
                    error=True,
                )
        self._render_lease()
        self.refresh_bindings()

    def _render_lease(self) -> None:
        if self.lost_to is None:
            super()._render_lease()
            return
        banner = self.query_one("#lease-banner", Static)
        banner.set_class(True, "held")
        kept = " · your unsaved text stays below" if self.is_dirty() else ""
        banner.update(
            safe_line(
                f"Being worked on by {self.lost_to}, who took it over from you — "
                f"read-only for you{kept} · o takes it back",
                style="bold",
            )
        )

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
            # Once held, a reload only renews: a lease taken over is not quietly retaken.
            take = rv.renew_lease if self.held else rv.acquire_lease
            lease = take(
                engine=self.review.engine,
                ticket_id=view.ticket.id or 0,
                actor=settings.actor,
                minutes=settings.lease_minutes,
            )
            self.renewed_at = time.monotonic()
        except Exception as exc:
            self.post_message(events.Failed(f"cannot open draft {self.draft_id}: {exc}"))
            return
        self.post_message(events.Loaded(view, lease, request))

    def on_ticket_screen_loaded(self, event: events.Loaded) -> None:
        if event.request != self.requested:
            return  # a newer load was asked for after this one started
        self.view = event.view
        draft = event.view.draft
        if self.is_dirty():
            self.review.say("reloaded the evidence; your unsaved edits are kept")
        else:
            self.version = draft.version
            self.saved_body = clean(draft.body)
            editor = self.query_one("#draft", TextArea)
            editor.load_text(self.saved_body)
        self._render_view(event.view)
        self._apply_lease(event.lease)
        if self.start_editing:
            self.start_editing = False
            self.action_edit()

    def on_ticket_screen_failed(self, event: events.Failed) -> None:
        self.review.say(event.text, error=True)
        if self.view is None:
            self.app.pop_screen()
        elif event.reload:
            self.load()
