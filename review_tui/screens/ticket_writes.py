"""The ticket screen's acts that write and may end the visit: release, discard, take over.

Each act asks first (a one-key confirmation naming the real recipient, the subject and
the body's first lines for a release), then runs its storage write in a worker thread
and reports back through a message; the UI itself never sends mail. A ticket answered
after its draft was written asks a second time, by name and time, before a second reply
goes out. Leaving with unsaved edits asks first; leaving hands the ticket's lease back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import work

from review_tui.screens import ticket_events as events
from review_tui.screens.dialogs import ConfirmScreen
from review_tui.screens.ticket_layout import TicketLayout
from review_tui.widgets.release_preview import release_lines
from review_tui.widgets.safe_text import safe_line
from storage import review as rv

__all__ = ["TicketWrites"]


class TicketWrites(TicketLayout):
    """Release, discard, take over and leave; the write worker the other acts share."""

    # Whether this visit has held the ticket's lease, and who took it since (if anyone):
    # a lost lease makes the screen read-only and is never quietly taken back.
    held: bool = False
    lost_to: str | None = None

    def action_release(self) -> None:
        view = self.view
        if view is None or self._read_only("releasing") or self._unsaved("releasing"):
            return
        draft = view.draft
        if self.lease is not None and not self.lease.mine:
            self.review.say(
                f"ticket {view.ticket.id} is being worked on by {self.lease.holder}: "
                "press o to take it over first",
                error=True,
            )
            return
        problems = rv.release_problems(draft)
        if problems:
            self.review.say("cannot release: " + "; ".join(problems), error=True)
            return
        lines = release_lines(
            draft.to_addr,
            view.message.from_addr or view.ticket.customer_addr,
            rv.subject_with_token(draft.subject, draft.ticket_id),
            draft.body,
        )
        self.app.push_screen(ConfirmScreen("Release this reply?", lines), self._release_confirmed)

    def _release_confirmed(self, yes: bool | None, *, second_reply: bool = False) -> None:
        if yes and self.view is not None:
            self._release(self.draft_id, self.version, self.view.draft.to_addr, second_reply)

    @work(thread=True, group="ticket-write")
    def _release(self, draft_id: int, version: int, to: str, second_reply: bool) -> None:
        settings = self.review.settings
        try:
            rv.release(
                engine=self.review.engine,
                draft_ids=[draft_id],
                actor=settings.actor,
                from_address=settings.from_address,
                expected_versions={draft_id: version},
                confirm_answered=second_reply,
            )
        except rv.AlreadyAnswered as exc:
            self.post_message(events.Answered(exc, version))
            return
        except Exception as exc:
            text = str(exc) if isinstance(exc, rv.ReviewError) else f"failed: {exc}"
            self.post_message(events.Failed(text, reload=True))
            return
        self.post_message(events.Finished(f"released reply to {to}"))

    def on_ticket_screen_answered(self, event: events.Answered) -> None:
        if self.view is None or event.version != self.version:
            return
        lines = [safe_line(str(event.error)), Text("Send this reply as well?")]
        self.app.push_screen(
            ConfirmScreen("This ticket was already answered", lines),
            lambda yes: self._release_confirmed(yes, second_reply=True),
        )

    def _read_only(self, doing: str) -> bool:
        if self.lost_to is not None:
            self.review.say(
                f"not {doing}: {self.lost_to} holds this ticket now (o takes it back)", error=True
            )
            return True
        return False

    def action_discard(self) -> None:
        if self.view is None or self._read_only("discarding"):
            return
        self.app.push_screen(
            ConfirmScreen(
                "Discard this draft (no reply is sent)?",
                [safe_line(f"To {self.view.draft.to_addr}")],
            ),
            self._discard_confirmed,
        )

    def _discard_confirmed(self, yes: bool | None) -> None:
        if yes:
            version = self.version
            self._run(
                lambda: rv.discard(
                    engine=self.review.engine,
                    draft_id=self.draft_id,
                    actor=self.review.settings.actor,
                    expected_version=version,
                ),
                f"discarded draft {self.draft_id}",
                finish=True,
            )

    def action_take_over(self) -> None:
        lease = self.lease
        if lease is None or lease.mine:
            self.review.say("you already hold this ticket")
            return
        self.app.push_screen(
            ConfirmScreen(
                f"Take this ticket over from {lease.holder}?",
                [Text("They will see that you took it.")],
            ),
            self._take_over_confirmed,
        )

    def _take_over_confirmed(self, yes: bool | None) -> None:
        if yes and self.view is not None:
            settings, ticket_id = self.review.settings, self.view.ticket.id or 0
            self._run(
                lambda: rv.take_over(
                    engine=self.review.engine,
                    ticket_id=ticket_id,
                    actor=settings.actor,
                    minutes=settings.lease_minutes,
                ),
                "you now hold this ticket",
            )

    def _run(self, act: Callable[[], Any], success: str, *, finish: bool = False) -> None:
        self._write(act, success, finish)

    @work(thread=True, group="ticket-write")
    def _write(self, act: Callable[[], Any], success: str, finish: bool) -> None:
        try:
            act()
        except rv.ReviewError as exc:
            self.post_message(events.Failed(str(exc), reload=True))
            return
        except Exception as exc:
            self.post_message(events.Failed(f"failed: {exc}", reload=True))
            return
        if finish:
            self.post_message(events.Finished(success))
        else:
            self.post_message(events.Changed(success))

    def on_ticket_screen_changed(self, event: events.Changed) -> None:
        self.review.say(event.text)
        self.load()

    def on_ticket_screen_finished(self, event: events.Finished) -> None:
        self.review.say(event.text)
        self._leave()

    def action_back(self) -> None:
        if not self.is_dirty():
            self._leave()
            return
        self.app.push_screen(
            ConfirmScreen(
                "Leave without saving?",
                [Text("Your edits to this draft will be lost (e, then ctrl+s saves them).")],
            ),
            lambda yes: self._leave() if yes else None,
        )

    def _leave(self) -> None:
        if self.view is not None and self.lease is not None and self.lease.mine:
            engine, ticket_id, actor = (
                self.review.engine,
                self.view.ticket.id or 0,
                self.review.settings.actor,
            )
            self.app.run_worker(
                lambda: rv.release_lease(engine=engine, ticket_id=ticket_id, actor=actor),
                thread=True,
                group="lease",
            )
        self.app.pop_screen()
