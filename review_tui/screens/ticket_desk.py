"""The ticket screen's desk acts: status, owner, priority, and merging or splitting tickets.

A rep who has read a ticket knows best what it is: solved, closed for good, spam, or
(reopened) waiting on us again; whose it is; how urgent; and whether it is the same
problem as another ticket, or two problems in one. Each act is one storage call that
audits itself (`storage.desk`), run in a worker; the ticket is reloaded after it so the
Why panel shows the result, and a refusal (a closed ticket cannot be reopened by hand,
say) is shown as a notification. Closing, marking spam, merging and splitting ask first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import work

from review_tui.screens import ticket_events as events
from review_tui.screens.desk_dialogs import Handover, assign_dialog, priority_dialog
from review_tui.screens.dialogs import ConfirmScreen, PromptScreen
from review_tui.screens.ticket_editing import TicketEditing
from review_tui.widgets.safe_text import safe_line
from storage import review as rv
from storage.desk.lifecycle import change_status
from storage.desk.merge import merge, split
from storage.desk.owners import set_priority, take

__all__ = ["TicketDesk"]

# What the rep reads after a status change, and what a confirmation says first (if any).
DONE = {"solved": "solved", "closed": "closed", "spam": "marked spam", "open": "reopened"}
ASK = {
    "closed": "Close this ticket for good? New mail from the customer starts a new ticket.",
    "spam": "Mark this ticket spam? Its mail is recorded as spam for training.",
}


def ticket_number(text: str) -> int:
    number = text.strip().lstrip("#")
    if not number.isdigit():
        raise ValueError("type the number of the ticket to merge into, e.g. 1042")
    return int(number)


class TicketDesk(TicketEditing):
    """Status, take, assign, priority, merge and split for the ticket on screen."""

    def _ticket_id(self) -> int | None:
        return None if self.view is None else self.view.ticket.id

    def action_status(self, status: str) -> None:
        ticket_id = self._ticket_id()
        if ticket_id is None or self._read_only("changing the status"):
            return
        if status in ASK:
            self.app.push_screen(
                ConfirmScreen(ASK[status], [Text(f"Ticket #{ticket_id}")]),
                lambda yes: self._set_status(ticket_id, status) if yes else None,
            )
        else:
            self._set_status(ticket_id, status)

    def _set_status(self, ticket_id: int, status: str) -> None:
        engine, actor = self.review.engine, self.review.settings.actor
        self._run(
            lambda: change_status(engine, ticket_id, status, actor=actor),
            f"ticket #{ticket_id} {DONE[status]}",
        )

    def action_take(self) -> None:
        ticket_id = self._ticket_id()
        if ticket_id is None or self._read_only("taking the ticket"):
            return
        engine, actor = self.review.engine, self.review.settings.actor
        self._run(lambda: take(engine, ticket_id, actor=actor), f"ticket #{ticket_id} is yours")

    def action_assign(self) -> None:
        if self.view is None or self._read_only("assigning the ticket"):
            return
        ticket, settings = self.view.ticket, self.review.settings
        self.app.push_screen(
            assign_dialog(
                settings.rules, actor=settings.actor, owner=ticket.owner, team=ticket.team
            ),
            lambda handover: self._assign_chosen(ticket.id or 0, handover),
        )

    def _assign_chosen(self, ticket_id: int, handover: Handover | None) -> None:
        if handover is None:
            return
        engine, settings = self.review.engine, self.review.settings
        self._run(
            lambda: handover.apply(engine, ticket_id, actor=settings.actor, desk=settings.rules),
            f"ticket #{ticket_id} {handover.describe()}",
        )

    def action_priority(self) -> None:
        if self.view is None or self._read_only("changing the priority"):
            return
        ticket_id = self.view.ticket.id or 0
        self.app.push_screen(
            priority_dialog(self.view.ticket.priority),
            lambda priority: self._priority_chosen(ticket_id, priority),
        )

    def _priority_chosen(self, ticket_id: int, priority: str | None) -> None:
        if priority:
            engine, actor = self.review.engine, self.review.settings.actor
            self._run(
                lambda: set_priority(engine, ticket_id, priority, actor=actor),
                f"ticket #{ticket_id} priority {priority}",
            )

    # ------------------------------------------------------------ merge, split

    def action_merge(self) -> None:
        ticket_id = self._ticket_id()
        if ticket_id is None or self._read_only("merging") or self._unsaved("merging"):
            return
        self.app.push_screen(
            PromptScreen(
                f"Merge ticket #{ticket_id} into ticket #",
                "its mail, drafts and replies move there; this ticket is left as a pointer",
                ticket_number,
            ),
            lambda into: self._merge(ticket_id, into) if into is not None else None,
        )

    def _merge(self, ticket_id: int, into: int) -> None:
        engine, actor = self.review.engine, self.review.settings.actor
        self._move(
            lambda: merge(engine, ticket_id, into, actor=actor),
            lambda _none: f"ticket #{ticket_id} merged into #{into}",
            ticket_id,
        )

    def action_split(self) -> None:
        view = self.view
        if view is None or self._read_only("splitting") or self._unsaved("splitting"):
            return
        message = view.message
        lines = [safe_line(f"{message.from_addr or ''} — {message.subject or ''}", limit=200)]
        self.app.push_screen(
            ConfirmScreen("Split this mail and its draft off into a new ticket?", lines),
            lambda yes: self._split_confirmed(yes, int(message.id or 0)),
        )

    def _split_confirmed(self, yes: bool | None, message_pk: int) -> None:
        if yes and self.view is not None:
            engine, actor = self.review.engine, self.review.settings.actor
            self._move(
                lambda: split(engine, message_pk, actor=actor),
                lambda new: f"split off as ticket #{new}",
                self.view.ticket.id or 0,
            )

    @work(thread=True, group="ticket-write")
    def _move(self, act: Callable[[], Any], done: Callable[[Any], str], old_ticket: int) -> None:
        """A write that moves the draft to another ticket; the screen then holds that one."""
        try:
            result = act()
        except Exception as exc:  # storage refused (the only mail of its ticket...) or failed
            text = str(exc) if isinstance(exc, rv.ReviewError) else f"failed: {exc}"
            self.post_message(events.Failed(text, reload=True))
            return
        self.post_message(events.Moved(done(result), old_ticket))

    def on_ticket_screen_moved(self, event: events.Moved) -> None:
        self.review.say(event.text)
        engine, actor = self.review.engine, self.review.settings.actor
        self.app.run_worker(
            lambda: rv.release_lease(engine=engine, ticket_id=event.old_ticket, actor=actor),
            thread=True,
            group="lease",
        )
        # A lease on the new ticket is taken afresh, not mistaken for one taken over.
        self.held, self.lost_to, self.lease = False, None, None
        self.load()
