"""Bulk review: every recipient and their messages, then a typed count to release.

Bulk is the riskiest act a rep has, so this screen lists the tagged drafts grouped by
the customer they go to ("ada@customer.example — 5 messages"), so that one customer
about to get several replies shows at a glance; each message can be expanded to its
full body. Stale drafts and drafts with unfilled placeholders are marked excluded, and
the release happens only when the rep types the number of messages that will go out.
The typed number is passed to storage, which checks it again together with the ops
role, inside the release transaction.

The count field has the focus; up and down move into the list, and a digit typed in
the list goes back to the count field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from sqlmodel import Session
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Static

from review_tui.widgets.bulk_groups import BulkGroups
from storage import review as rv

if TYPE_CHECKING:
    from review_tui.app import ReviewApp


class BulkReviewScreen(Screen[list[int] | None]):
    HELP_TITLE = "Keys — releasing tagged replies"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="bulk.cancel"),
    ]

    class Loaded(Message):
        def __init__(self, candidates: list[rv.BulkCandidate]) -> None:
            super().__init__()
            self.candidates = candidates

    class Outcome(Message):
        def __init__(self, released: list[int] | None, error: str = "") -> None:
            super().__init__()
            self.released = released
            self.error = error

    def __init__(self, draft_ids: list[int]) -> None:
        super().__init__()
        self.draft_ids = draft_ids
        self.candidates: list[rv.BulkCandidate] = []

    @property
    def review(self) -> ReviewApp:
        return self.app  # type: ignore[return-value]

    @property
    def eligible(self) -> list[rv.BulkCandidate]:
        return [c for c in self.candidates if c.eligible]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("loading tagged drafts…", id="bulk-summary", markup=False)
        yield BulkGroups(id="bulk-list")
        yield Static("", id="bulk-prompt", markup=False)
        yield Input(
            placeholder="number of messages",
            id="bulk-confirm",
            disabled=True,
            select_on_focus=False,  # a digit typed in the list must add to the field
        )
        yield Static("", id="bulk-error", classes="error", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="bulk-load")
    def load(self) -> None:
        with Session(self.review.reader) as session:
            candidates = rv.bulk_candidates(session=session, draft_ids=self.draft_ids)
        self.post_message(self.Loaded(candidates))

    def on_bulk_review_screen_loaded(self, event: Loaded) -> None:
        self.candidates = event.candidates
        settings = self.review.settings
        n, excluded = len(self.eligible), len(self.candidates) - len(self.eligible)
        recipients = len({c.to_addr.casefold() for c in self.eligible})
        summary = (
            f"{len(self.candidates)} tagged · {n} will be released to {recipients} "
            f"{'recipient' if recipients == 1 else 'recipients'} · {excluded} excluded"
        )
        if n > settings.bulk_ops_threshold:
            role = "you have it" if settings.is_ops else "you do not have it"
            summary += f" · more than {settings.bulk_ops_threshold} needs the ops role ({role})"
        self.query_one("#bulk-summary", Static).update(Text(summary, style="bold"))
        self.query_one(BulkGroups).show(self.candidates)
        prompt = self.query_one("#bulk-prompt", Static)
        field = self.query_one("#bulk-confirm", Input)
        if n:
            prompt.update(
                Text(
                    f"Type {n} and press enter to release {n} messages "
                    "(↑/↓ reads them, enter expands one; escape cancels):"
                )
            )
            field.disabled = False
            field.focus()
        else:
            prompt.update(Text("Nothing here can be released; fix the excluded drafts first."))
            self.query_one(BulkGroups).focus()

    @on(Input.Submitted, "#bulk-confirm")
    def confirmed(self, event: Input.Submitted) -> None:
        event.stop()
        error = self.query_one("#bulk-error", Static)
        try:
            typed = int(event.value.strip())
        except ValueError:
            error.update(Text(f"type the number of messages ({len(self.eligible)})"))
            return
        error.update("")
        self.query_one("#bulk-confirm", Input).disabled = True
        self.release(self.eligible, typed)

    @work(thread=True, exclusive=True, group="bulk-release")
    def release(self, chosen: list[rv.BulkCandidate], typed: int) -> None:
        settings = self.review.settings
        try:
            rv.release(
                engine=self.review.engine,
                draft_ids=[c.draft_id for c in chosen],
                actor=settings.actor,
                from_address=settings.from_address,
                bulk=True,
                confirm_count=typed,
                ops_roles=settings.ops,
                bulk_ops_threshold=settings.bulk_ops_threshold,
                bulk_window_minutes=settings.bulk_window_minutes,
                expected_versions={c.draft_id: c.version for c in chosen},
            )
        except rv.ReviewError as exc:
            self.post_message(self.Outcome(None, str(exc)))
            return
        except Exception as exc:
            self.post_message(self.Outcome(None, f"nothing was released: {exc}"))
            return
        self.post_message(self.Outcome([c.draft_id for c in chosen]))

    def on_bulk_review_screen_outcome(self, event: Outcome) -> None:
        if event.released is not None:
            self.dismiss(event.released)
            return
        self.query_one("#bulk-error", Static).update(Text(event.error))
        field = self.query_one("#bulk-confirm", Input)
        field.disabled = False
        field.value = ""
        field.focus()
        self.load()

    def on_key(self, event: events.Key) -> None:
        """Up/down in the count field move into the list; a digit in the list types there."""
        field = self.query_one("#bulk-confirm", Input)
        groups = self.query_one(BulkGroups)
        if field.has_focus and event.key in ("up", "down") and groups.option_count:
            event.stop()
            groups.focus()
        elif (
            groups.has_focus
            and not field.disabled
            and event.character
            and event.character.isdigit()
        ):
            event.stop()
            field.focus()
            field.insert_text_at_cursor(event.character)

    def action_cancel(self) -> None:
        self.dismiss(None)
