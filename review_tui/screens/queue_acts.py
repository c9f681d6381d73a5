"""The acts a rep starts on the queue's current row: open, relabel, release, discard.

Each write asks first where it cannot be undone (release, discard), then runs in a
thread worker and reports through `Done`, which says what happened and reloads the
page. A release is checked before it is offered: a worker reads the draft as it is now,
and a draft that cannot go out (unfilled placeholders, stale, ...) is refused with the
reason; otherwise the confirmation shows the real recipient, subject and the body's
first lines. Releasing the tagged drafts opens the bulk review screen instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from rich.text import Text
from sqlmodel import Session
from textual import on, work
from textual.message import Message
from textual.widgets import DataTable

from review_tui.screens.dialogs import ChoiceScreen, ConfirmScreen
from review_tui.screens.queue_paging import QueuePaging
from review_tui.widgets.release_preview import release_lines
from review_tui.widgets.safe_text import safe_line
from storage import review as rv

__all__ = ["QueueActs"]


class QueueActs(QueuePaging):
    """Opening, relabelling, releasing and discarding drafts from the queue."""

    class Previewed(Message, namespace="queue_screen"):
        """A draft read for its release confirmation, with why it cannot go, if so."""

        def __init__(self, preview: rv.BulkCandidate, row: rv.QueueRow) -> None:
            super().__init__()
            self.preview = preview
            self.row = row

    @on(DataTable.RowSelected)
    def row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self, *, edit: bool = False) -> None:
        row = self.current()
        if row is None:
            return
        from review_tui.screens.ticket import TicketScreen

        self.opened.add(row.draft_id)
        self.app.push_screen(TicketScreen(row.draft_id, edit=edit))

    def action_edit(self) -> None:
        self.action_open(edit=True)

    def action_intent(self) -> None:
        row = self.current()
        if row is None:
            return
        options = [(name, Text(name)) for name in self.review.settings.intents]
        self.app.push_screen(
            ChoiceScreen(
                "Change intent (recorded for retraining)", options, current=row.intent or ""
            ),
            lambda intent: self._intent_chosen(row.draft_id, intent),
        )

    def _intent_chosen(self, draft_id: int, intent: str | None) -> None:
        if intent:
            self.relabel(draft_id, intent)

    @work(thread=True, group="queue-write")
    def relabel(self, draft_id: int, intent: str) -> None:
        self._write(
            lambda: rv.relabel(
                engine=self.review.engine,
                draft_id=draft_id,
                new_intent=intent,
                actor=self.review.settings.actor,
            ),
            f"draft {draft_id} relabelled {intent}",
        )

    def action_release_one(self) -> None:
        row = self.current()
        if row is not None:
            self.preview(row)

    @work(thread=True, exclusive=True, group="queue-preview")
    def preview(self, row: rv.QueueRow) -> None:
        try:
            with Session(self.review.reader) as session:
                found = rv.release_preview(session=session, draft_id=row.draft_id)
        except Exception as exc:
            self.post_message(self.Done(f"cannot release: {exc}", error=True))
            return
        self.post_message(self.Previewed(found, row))

    def on_queue_screen_previewed(self, event: Previewed) -> None:
        found = event.preview
        if found.problems:
            self.review.say(
                f"cannot release #{found.ticket_id}: {'; '.join(found.problems)}", error=True
            )
            return
        row = replace(event.row, version=found.version)
        lines = release_lines(found.to_addr, found.from_addr, found.subject, found.body)
        self.app.push_screen(
            ConfirmScreen("Release this reply?", lines),
            lambda yes: self._confirmed(yes, self.release_one, row),
        )

    def _confirmed(
        self, yes: bool | None, act: Callable[[rv.QueueRow], object], row: rv.QueueRow
    ) -> None:
        if yes:
            act(row)

    @work(thread=True, group="queue-write")
    def release_one(self, row: rv.QueueRow) -> None:
        settings = self.review.settings
        self._write(
            lambda: rv.release(
                engine=self.review.engine,
                draft_ids=[row.draft_id],
                actor=settings.actor,
                from_address=settings.from_address,
                expected_versions={row.draft_id: row.version},
            ),
            f"released reply to {row.sender}",
        )

    def action_discard(self) -> None:
        row = self.current()
        if row is None:
            return
        self.app.push_screen(
            ConfirmScreen(
                "Discard this draft (no reply is sent)?",
                [safe_line(f"{row.sender} — {row.subject}")],
            ),
            lambda yes: self._confirmed(yes, self.discard, row),
        )

    @work(thread=True, group="queue-write")
    def discard(self, row: rv.QueueRow) -> None:
        self._write(
            lambda: rv.discard(
                engine=self.review.engine,
                draft_id=row.draft_id,
                actor=self.review.settings.actor,
                expected_version=row.version,
            ),
            f"discarded draft {row.draft_id}",
        )

    def _write(self, act: Callable[[], Any], success: str) -> None:
        """Run a storage write (in a worker thread) and report the outcome."""
        try:
            act()
        except rv.ReviewError as exc:
            self.post_message(self.Done(str(exc), error=True))
        except Exception as exc:  # a storage failure: nothing was changed
            self.post_message(self.Done(f"failed: {exc}", error=True))
        else:
            self.post_message(self.Done(success))

    def action_release_tagged(self) -> None:
        if not self.tagged:
            self.review.say("nothing tagged: t tags one, T tags by pattern", error=True)
            return
        from review_tui.screens.bulk import BulkReviewScreen

        self.app.push_screen(BulkReviewScreen(sorted(self.tagged)), self._bulk_finished)

    def _bulk_finished(self, released: list[int] | None) -> None:
        if released:
            self.tagged.difference_update(released)
            self.review.say(f"released {len(released)} replies")
        self.reload()
