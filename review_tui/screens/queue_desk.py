"""The queue's desk keys: which view is shown, and who has the ticket under the cursor.

A rep starts on their own queue ("mine": what they own, and what nobody owns in their
teams) and switches views with 1–5 or cycles them with v; the view is remembered with
the sort and the filter. Taking a ticket (A), assigning it (a) and setting its priority
(P) are storage writes that audit themselves; they run in a worker, and a refusal comes
back as a notification.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from textual import work

from review_tui.screens.desk_dialogs import Handover, assign_dialog, priority_dialog
from review_tui.screens.queue_acts import QueueActs
from storage import review as rv
from storage.desk.owners import set_priority, take

__all__ = ["QueueDesk"]


class QueueDesk(QueueActs):
    """Views (mine, all, pending, solved, spam), take, assign and priority."""

    def action_view(self, view: str) -> None:
        if view in rv.VIEWS and view != self.flt.view:
            self._set_filter(replace(self.flt, view=view))

    def action_next_view(self) -> None:
        views = list(rv.VIEWS)
        at = views.index(self.flt.view) if self.flt.view in views else -1
        self.action_view(views[(at + 1) % len(views)])

    def action_take(self) -> None:
        row = self.current()
        if row is None:
            return
        actor = self.review.settings.actor
        if row.owner == actor:
            self.review.say(f"ticket #{row.ticket_id} is already yours")
            return
        engine = self.review.engine
        self._desk_write(
            lambda: take(engine, row.ticket_id, actor=actor), f"ticket #{row.ticket_id} is yours"
        )

    def action_assign(self) -> None:
        row = self.current()
        if row is None:
            return
        settings = self.review.settings
        self.app.push_screen(
            assign_dialog(settings.rules, actor=settings.actor, owner=row.owner, team=row.team),
            lambda handover: self._assign_chosen(row.ticket_id, handover),
        )

    def _assign_chosen(self, ticket_id: int, handover: Handover | None) -> None:
        if handover is None:
            return
        settings, engine = self.review.settings, self.review.engine
        self._desk_write(
            lambda: handover.apply(engine, ticket_id, actor=settings.actor, desk=settings.rules),
            f"ticket #{ticket_id} {handover.describe()}",
        )

    def action_priority(self) -> None:
        row = self.current()
        if row is None:
            return
        self.app.push_screen(
            priority_dialog(row.priority),
            lambda priority: self._priority_chosen(row.ticket_id, priority),
        )

    def _priority_chosen(self, ticket_id: int, priority: str | None) -> None:
        if priority:
            engine, actor = self.review.engine, self.review.settings.actor
            self._desk_write(
                lambda: set_priority(engine, ticket_id, priority, actor=actor),
                f"ticket #{ticket_id} priority {priority}",
            )

    @work(thread=True, group="queue-write")
    def _desk_write(self, act: Callable[[], Any], success: str) -> None:
        self._write(act, success)
