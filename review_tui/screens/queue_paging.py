"""The queue screen's page: what it shows, how it loads, and moving through it.

`QueuePaging` holds the screen's state (the filter, the page offset, the rows shown and
the tagged ids), lays out the table and its status lines, and loads pages in a thread
worker that posts the result back, so a slow query never freezes the keyboard. Loads
are numbered and only the newest may fill the table; a timer re-reads the page so new
mail and other reps' changes appear without a restart. Rows that arrived since the rep
last loaded the queue are marked "new" (until opened), and the view, sort and filter
are remembered for the rep across runs (`review_tui.prefs`). Each load also counts
every view (mine, all, pending, solved, spam) for the tabs above the table. The acts a
rep starts from the queue build on this class in their own modules.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from rich.text import Text
from sqlmodel import Session
from textual import work
from textual.app import ComposeResult
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from review_tui.prefs import DEFAULT_FILTER, QueuePrefs, load_prefs, save_prefs
from review_tui.query import describe_filter
from review_tui.widgets.desk import VIEW_LABELS, view_tabs
from review_tui.widgets.queue_table import SORT_LABELS, QueueTable
from review_tui.widgets.safe_text import safe_line
from storage import review as rv
from storage.models import utcnow

if TYPE_CHECKING:
    from review_tui.app import ReviewApp

__all__ = ["QueuePaging"]


class QueuePaging(Screen[None]):
    """The queue's state, layout, page loading, cursor, paging and sorting."""

    # Messages are named in the screen's namespace (`on_queue_screen_done`, ...), so
    # handlers keep their names whichever of the screen's modules defines them.
    class PageLoaded(Message, namespace="queue_screen"):
        def __init__(
            self,
            rows: list[rv.QueueRow],
            counts: dict[str, int],
            problems: tuple[int, int],
            request: int,
        ) -> None:
            super().__init__()
            self.rows = rows
            self.counts = counts  # rows per view, the current one included
            self.problems, self.suppressed = problems
            self.request = request

    class Tagged(Message, namespace="queue_screen"):
        def __init__(self, ids: list[int], pattern: str) -> None:
            super().__init__()
            self.ids = ids
            self.pattern = pattern

    class Done(Message, namespace="queue_screen"):
        """A write finished: say so and reload."""

        def __init__(self, text: str, *, error: bool = False, reload: bool = True) -> None:
            super().__init__()
            self.text = text
            self.error = error
            self.reload = reload

    def __init__(self) -> None:
        super().__init__()
        self.flt = DEFAULT_FILTER
        self.page_offset = 0
        self.rows: list[rv.QueueRow] = []
        self.total = 0
        self.counts: dict[str, int] = {}
        self.problems = 0
        self.suppressed = 0
        self.tagged: set[int] = set()
        self.opened: set[int] = set()  # drafts opened this run lose their "new" mark
        self.new_since: datetime | None = None
        self.loaded = False
        # Every load is numbered; only the newest may fill the table. A thread worker
        # that was superseded still finishes, and its older page must not win.
        self.requested = 0

    @property
    def review(self) -> ReviewApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="queue-views", markup=False)
        yield Static("", id="queue-filter", markup=False)
        yield QueueTable(id="queue")
        yield Static("", id="queue-status", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        settings = self.review.settings
        prefs = load_prefs(settings.prefs_path, settings.actor)
        self.flt = replace(prefs.flt, me=settings.actor, teams=settings.teams)
        self.new_since = prefs.last_seen
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
                counts = rv.count_views(session=session, flt=flt)
                problems = (
                    rv.count_problems(session=session),
                    rv.count_suppressed(session=session),
                )
        except Exception as exc:  # shown to the rep; the screen keeps its last page
            # No reload from here: an unreachable database would make that a tight
            # loop. The timer (or the rep's next action) tries again.
            self.post_message(
                self.Done(f"could not load the queue: {exc}", error=True, reload=False)
            )
            return
        self.post_message(self.PageLoaded(rows, counts, problems, request))

    def on_queue_screen_page_loaded(self, event: PageLoaded) -> None:
        if event.request != self.requested:
            return  # an older request finished after a newer one was made
        if not self.loaded:
            now = self.review.settings.clock()
            self.new_since = self.new_since or now  # first visit ever: only later mail is new
            self._remember(last_seen=now)
        self.loaded = True
        self.rows, self.counts = event.rows, event.counts
        self.total = event.counts.get(self.flt.view or "", 0)
        self.problems, self.suppressed = event.problems, event.suppressed
        table = self.query_one(QueueTable)
        table.show(
            self.rows,
            tagged=self.tagged,
            now=self.review.settings.clock(),
            holder_of=self._holder,
            is_new=self.is_new,
        )
        self._update_status()

    def is_new(self, row: rv.QueueRow) -> bool:
        """Arrived since the rep last loaded the queue, and not opened since."""
        since = self.new_since
        return since is not None and row.received_at > since and row.draft_id not in self.opened

    def _remember(self, *, last_seen: datetime | None = None) -> None:
        """Save the sort and filter (and the visit time) for the rep's next run."""
        settings = self.review.settings
        if settings.prefs_path is None:
            return
        seen = last_seen or load_prefs(settings.prefs_path, settings.actor).last_seen
        save_prefs(settings.prefs_path, settings.actor, QueuePrefs(flt=self.flt, last_seen=seen))

    def _holder(self, row: rv.QueueRow) -> str:
        now = utcnow()  # leases run on real time; the clock only drives displayed ages
        if row.lease_holder and row.lease_expires_at and row.lease_expires_at > now:
            return "" if row.lease_holder == self.review.settings.actor else row.lease_holder
        return ""

    def _update_status(self) -> None:
        shown = len(self.rows)
        first = self.page_offset + 1 if shown else 0
        sort = f"sort {self.sort_label()}"
        parts = [
            f"showing {shown:,} of {self.total:,}",
            f"rows {first:,}–{self.page_offset + shown:,}",
            sort,
            f"{len(self.tagged):,} tagged",
        ]
        fresh = sum(1 for r in self.rows if self.is_new(r))
        if fresh:
            parts.append(f"{fresh:,} new")
        if self.problems:
            parts.append(f"{self.problems:,} shunted/failed (s)")
        if self.suppressed:
            parts.append(f"{self.suppressed:,} suppressed (s)")
        self.query_one("#queue-status", Static).update(Text(" · ".join(parts)))
        self.query_one("#queue-views", Static).update(view_tabs(self.counts, self.flt.view))
        self.query_one("#queue-filter", Static).update(safe_line(self._view_line(), limit=300))

    def _view_line(self) -> str:
        """The view and its filter; the state filter applies to the open views only."""
        flt, label = self.flt, VIEW_LABELS.get(self.flt.view or "", "")
        search = f"  search: {flt.search}" if flt.search else ""
        if flt.view in ("mine", "all"):
            return f"{label} · filter: {describe_filter(flt)}{search}"
        rest = describe_filter(replace(flt, states=()))
        return f"{label} · each ticket's latest draft{f' · filter: {rest}' if rest else ''}{search}"

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
        self.review.say(f"sorted {self.sort_label()}")

    def action_reverse(self) -> None:
        self._set_filter(replace(self.flt, descending=not self.flt.descending))

    def action_newest(self) -> None:
        """Newest first; pressed again (already newest first), oldest first."""
        newest = self.flt.sort == "age" and self.flt.descending
        self._set_filter(replace(self.flt, sort="age", descending=not newest))
        self.review.say(f"sorted {self.sort_label()}")

    def sort_label(self) -> str:
        if self.flt.sort == "age":
            return "newest first" if self.flt.descending else "oldest first"
        if self.flt.sort == "due":
            return "due latest first" if self.flt.descending else "due soonest first"
        return f"by {SORT_LABELS[self.flt.sort]}{' ↓' if self.flt.descending else ''}"

    def _set_filter(self, flt: rv.QueueFilter) -> None:
        self.flt = flt
        self.page_offset = 0
        self._update_status()
        self._remember()
        self.reload()
