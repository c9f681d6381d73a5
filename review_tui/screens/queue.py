"""The queue screen: one page of drafts, filters, tags, and the acts a rep starts here.

All database work runs in thread workers that post a Message back, so a slow query
never freezes the keyboard. The screen holds only the current page, the filter and the
set of tagged draft ids; a timer re-reads the page so new mail and other reps' changes
appear without a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from rich.text import Text
from sqlmodel import Session
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from review_tui.query import describe_filter, parse_filter, parse_pattern
from review_tui.screens.dialogs import ChoiceScreen, ConfirmScreen, PromptScreen
from review_tui.widgets.queue_table import SORT_LABELS, QueueTable
from review_tui.widgets.safe_text import safe_line
from storage import review as rv
from storage.models import utcnow

if TYPE_CHECKING:
    from review_tui.app import ReviewApp


class QueueScreen(Screen[None]):
    BINDINGS = [
        Binding("j", "cursor('down')", "Down", show=False, id="queue.down"),
        Binding("k", "cursor('up')", "Up", show=False, id="queue.up"),
        Binding("enter", "open", "Open", id="queue.open"),
        Binding("e", "edit", "Edit", id="queue.edit"),
        Binding("i", "intent", "Intent", id="queue.intent"),
        Binding("r", "release_one", "Release", id="queue.release"),
        Binding("d", "discard", "Discard", id="queue.discard"),
        Binding("t", "tag", "Tag", id="queue.tag"),
        Binding("T", "tag_pattern", "Tag pattern", id="queue.tag_pattern"),
        Binding("R", "release_tagged", "Release tagged", id="queue.release_tagged"),
        Binding("slash", "search", "Search", key_display="/", id="queue.search"),
        Binding("f", "filter", "Filter", id="queue.filter"),
        Binding("s", "problems", "Shunted/failed", id="queue.problems"),
        Binding("n", "page(1)", "Next page", show=False, id="queue.next"),
        Binding("p", "page(-1)", "Prev page", show=False, id="queue.prev"),
        Binding("o", "sort", "Sort", show=False, id="queue.sort"),
        Binding("O", "reverse", "Reverse sort", show=False, id="queue.reverse"),
        Binding("u", "untag_all", "Clear tags", show=False, id="queue.untag"),
        Binding("q", "quit", "Quit", id="queue.quit"),
    ]

    class PageLoaded(Message):
        def __init__(
            self,
            rows: list[rv.QueueRow],
            total: int,
            problems: int,
            request: int,
        ) -> None:
            super().__init__()
            self.rows = rows
            self.total = total
            self.problems = problems
            self.request = request

    class Tagged(Message):
        def __init__(self, ids: list[int], pattern: str) -> None:
            super().__init__()
            self.ids = ids
            self.pattern = pattern

    class Done(Message):
        """A write finished: say so and reload."""

        def __init__(self, text: str, *, error: bool = False, reload: bool = True) -> None:
            super().__init__()
            self.text = text
            self.error = error
            self.reload = reload

    def __init__(self) -> None:
        super().__init__()
        self.flt = rv.QueueFilter()
        self.page_offset = 0
        self.rows: list[rv.QueueRow] = []
        self.total = 0
        self.problems = 0
        self.tagged: set[int] = set()
        self.loaded = False
        # Every load is numbered; only the newest may fill the table. A thread worker
        # that was superseded still finishes, and its older page must not win.
        self.requested = 0

    @property
    def review(self) -> ReviewApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="queue-filter", markup=False)
        yield QueueTable(id="queue")
        yield Static("", id="queue-status", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.reload()
        seconds = self.review.settings.refresh_seconds
        if seconds > 0:
            self.set_interval(seconds, self._tick)

    def on_screen_resume(self) -> None:
        if self.loaded:
            self.reload()

    def _tick(self) -> None:
        if self.app.screen is self:
            self.reload()

    # ------------------------------------------------------------ loading

    def reload(self) -> None:
        self.requested += 1
        self.load_page(self.flt, self.page_offset, self.requested)

    @work(thread=True, exclusive=True, group="queue-page")
    def load_page(self, flt: rv.QueueFilter, offset: int, request: int) -> None:
        size = self.review.settings.page_size
        try:
            with Session(self.review.reader) as session:
                rows = rv.page_queue(session=session, flt=flt, offset=offset, limit=size)
                total = rv.count_queue(session=session, flt=flt)
                problems = rv.count_problems(session=session)
        except Exception as exc:  # shown to the rep; the screen keeps its last page
            # No reload from here: an unreachable database would make that a tight
            # loop. The timer (or the rep's next action) tries again.
            self.post_message(
                self.Done(f"could not load the queue: {exc}", error=True, reload=False)
            )
            return
        self.post_message(self.PageLoaded(rows, total, problems, request))

    def on_queue_screen_page_loaded(self, event: PageLoaded) -> None:
        if event.request != self.requested:
            return  # an older request finished after a newer one was made
        self.loaded = True
        self.rows, self.total, self.problems = event.rows, event.total, event.problems
        table = self.query_one(QueueTable)
        table.show(
            self.rows, tagged=self.tagged, now=self.review.settings.clock(), holder_of=self._holder
        )
        self._update_status()

    def _holder(self, row: rv.QueueRow) -> str:
        now = utcnow()  # leases run on real time; the clock only drives displayed ages
        if row.lease_holder and row.lease_expires_at and row.lease_expires_at > now:
            return "" if row.lease_holder == self.review.settings.actor else row.lease_holder
        return ""

    def _update_status(self) -> None:
        shown = len(self.rows)
        first = self.page_offset + 1 if shown else 0
        sort = f"sort {self.flt.sort}{' ↓' if self.flt.descending else ''}"
        parts = [
            f"showing {shown:,} of {self.total:,}",
            f"rows {first:,}–{self.page_offset + shown:,}",
            sort,
            f"{len(self.tagged):,} tagged",
        ]
        if self.problems:
            parts.append(f"{self.problems:,} shunted/failed (s)")
        self.query_one("#queue-status", Static).update(Text(" · ".join(parts)))
        search = f"  search: {self.flt.search}" if self.flt.search else ""
        self.query_one("#queue-filter", Static).update(
            safe_line(f"filter: {describe_filter(self.flt)}{search}", limit=300)
        )

    def on_queue_screen_done(self, event: Done) -> None:
        self.review.say(event.text, error=event.error)
        if event.reload:
            self.reload()

    # ------------------------------------------------------------ cursor and paging

    def current(self) -> rv.QueueRow | None:
        draft_id = self.query_one(QueueTable).current_draft_id()
        return next((r for r in self.rows if r.draft_id == draft_id), None)

    def action_cursor(self, direction: str) -> None:
        table = self.query_one(QueueTable)
        table.action_cursor_down() if direction == "down" else table.action_cursor_up()

    def action_page(self, step: int) -> None:
        size = self.review.settings.page_size
        offset = max(0, self.page_offset + step * size)
        if offset >= self.total and step > 0:
            self.review.say("already on the last page")
            return
        self.page_offset = offset
        self.reload()

    def action_sort(self) -> None:
        keys = list(rv.SORT_KEYS)
        nxt = keys[(keys.index(self.flt.sort) + 1) % len(keys)]
        self._set_filter(replace(self.flt, sort=nxt))
        self.review.say(f"sorted by {SORT_LABELS[nxt]}")

    def action_reverse(self) -> None:
        self._set_filter(replace(self.flt, descending=not self.flt.descending))

    def _set_filter(self, flt: rv.QueueFilter) -> None:
        self.flt = flt
        self.page_offset = 0
        self._update_status()
        self.reload()

    # ------------------------------------------------------------ prompts

    def action_search(self) -> None:
        self.app.push_screen(
            PromptScreen(
                "Search",
                "sender, subject or bucket; empty clears",
                str.strip,
                value=self.flt.search,
            ),
            lambda text: None if text is None else self._set_filter(replace(self.flt, search=text)),
        )

    def action_filter(self) -> None:
        hint = (
            "state:drafted,needs_triage,stale,failed intent:billing conf:0.5-0.9 "
            "mailbox:support — empty resets"
        )
        self.app.push_screen(
            PromptScreen(
                "Filter",
                hint,
                lambda text: parse_filter(text, self.flt),
                value=describe_filter(self.flt),
            ),
            lambda flt: None if flt is None else self._set_filter(flt),
        )

    def action_problems(self) -> None:
        from review_tui.screens.problems import ProblemsScreen

        self.app.push_screen(ProblemsScreen())

    def action_quit(self) -> None:
        self.app.exit()

    # ------------------------------------------------------------ tags

    def action_tag(self) -> None:
        row = self.current()
        if row is None:
            return
        if row.draft_id in self.tagged:
            self.tagged.discard(row.draft_id)
        else:
            self.tagged.add(row.draft_id)
        table = self.query_one(QueueTable)
        table.set_tag_mark(row.draft_id, row.draft_id in self.tagged)
        table.action_cursor_down()
        self._update_status()

    def action_untag_all(self) -> None:
        self.tagged.clear()
        self.reload()

    def action_tag_pattern(self) -> None:
        row = self.current()
        value = f"intent:{row.intent}" if row and row.intent else ""
        self.app.push_screen(
            PromptScreen(
                "Tag by pattern",
                "intent:x · signature:x · entity:x · domain:x (within the current filter)",
                parse_pattern,
                value=value,
            ),
            self._pattern_chosen,
        )

    def _pattern_chosen(self, pattern: tuple[str, str] | None) -> None:
        if pattern is not None:
            self.tag_matching(*pattern)

    @work(thread=True, exclusive=True, group="queue-tag")
    def tag_matching(self, field_name: str, value: str) -> None:
        try:
            with Session(self.review.reader) as session:
                ids = rv.tag_by_pattern(
                    session=session, field_name=field_name, value=value, flt=self.flt
                )
        except rv.ReviewError as exc:
            self.post_message(self.Done(str(exc), error=True))
            return
        self.post_message(self.Tagged(ids, f"{field_name}:{value}"))

    def on_queue_screen_tagged(self, event: Tagged) -> None:
        before = len(self.tagged)
        self.tagged.update(event.ids)
        self.review.say(
            f"{event.pattern}: {len(self.tagged) - before} more tagged ({len(event.ids)} match)"
        )
        self.reload()

    # ------------------------------------------------------------ acts

    @on(DataTable.RowSelected)
    def row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self, *, edit: bool = False) -> None:
        row = self.current()
        if row is None:
            return
        from review_tui.screens.ticket import TicketScreen

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
        if row is None:
            return
        lines = [
            safe_line(f"To:      {row.sender}"),
            safe_line(f"Subject: {rv.subject_with_token(row.reply_subject, row.ticket_id)}"),
        ]
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
