"""The queue screen: one page of drafts, filters, tags, and the acts a rep starts here.

All database work runs in thread workers that post a Message back, so a slow query
never freezes the keyboard. The screen holds only the current page, the filter and the
set of tagged draft ids; a timer re-reads the page so new mail and other reps' changes
appear without a restart.

The screen is built in layers: `queue_paging` (state, layout, loading, paging),
`queue_acts` (open, relabel, release, discard), `queue_desk` (views; take, assign,
priority) and this module (key bindings, the search and filter prompts, and tagging).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from rich.text import Text
from sqlmodel import Session
from textual import work
from textual.binding import Binding

from review_tui.query import (
    SUPPRESSED,
    describe_filter,
    describe_pattern,
    parse_filter,
    parse_pattern,
    parse_tag_pattern,
    pattern_choices,
    wants_suppressed,
)
from review_tui.screens.dialogs import ConfirmScreen, PickOrTypeScreen, PromptScreen
from review_tui.screens.queue_desk import QueueDesk
from review_tui.screens.queue_paging import QueuePaging
from review_tui.widgets.queue_table import QueueTable
from review_tui.widgets.safe_text import safe_line
from storage import review as rv
from storage.models import Draft
from storage.review.patterns import TagPattern, one_term

__all__ = ["QueueScreen"]


class QueueScreen(QueueDesk):
    HELP_TITLE = "Keys — the queue"
    # Footer order is importance order: a narrow terminal cuts the footer from the right.
    BINDINGS = [
        Binding("j", "cursor('down')", "Down", show=False, id="queue.down"),
        Binding("k", "cursor('up')", "Up", show=False, id="queue.up"),
        # priority: the table's own enter binding would otherwise hide it from the footer
        Binding("enter", "open", "Open", priority=True, key_display="enter", id="queue.open"),
        Binding("e", "edit", "Edit", id="queue.edit"),
        Binding("i", "intent", "Intent", id="queue.intent"),
        Binding("r", "release_one", "Release", id="queue.release"),
        Binding("d", "discard", "Discard", id="queue.discard"),
        Binding("A", "take", "Assign me", id="queue.take"),
        Binding("a", "assign", "Assign…", id="queue.assign"),
        Binding("P", "priority", "Priority", id="queue.priority"),
        Binding("v", "next_view", "View", id="queue.view"),
        Binding("t", "tag", "Tag", id="queue.tag"),
        Binding("u", "untag_all", "Clear tags", id="queue.untag"),
        Binding("R", "release_tagged", "Release tagged", id="queue.release_tagged"),
        Binding("f", "filter", "Filter", id="queue.filter"),
        Binding("q", "quit", "Quit", id="queue.quit"),
        Binding("N", "newest", "Newest first", id="queue.newest"),
        Binding("s", "problems", "Shunted/failed", id="queue.problems"),
        Binding("I", "incidents", "Incidents", id="queue.incidents"),
        Binding("T", "tag_pattern", "Tag pattern", show=False, id="queue.tag_pattern"),
        Binding("slash", "search", "Search", show=False, key_display="/", id="queue.search"),
        Binding("n", "page(1)", "Next page", show=False, id="queue.next"),
        Binding("p", "page(-1)", "Prev page", show=False, id="queue.prev"),
        Binding("o", "sort", "Sort", show=False, id="queue.sort"),
        Binding("O", "reverse", "Reverse sort", show=False, id="queue.reverse"),
        Binding("1", "view('mine')", "View: mine", show=False, id="queue.view_mine"),
        Binding("2", "view('all')", "View: all open", show=False, id="queue.view_all"),
        Binding("3", "view('pending')", "View: pending", show=False, id="queue.view_pending"),
        Binding("4", "view('solved')", "View: solved", show=False, id="queue.view_solved"),
        Binding("5", "view('spam')", "View: spam", show=False, id="queue.view_spam"),
    ]

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
            "mailbox:support — empty resets; state:suppressed shows held-back mail"
        )
        self.app.push_screen(
            PromptScreen(
                "Filter",
                hint,
                self._parse_filter,
                value=describe_filter(self.flt),
            ),
            self._filter_chosen,
        )

    def _parse_filter(self, text: str) -> rv.QueueFilter | str:
        return SUPPRESSED if wants_suppressed(text) else parse_filter(text, self.flt)

    def _filter_chosen(self, flt: rv.QueueFilter | str | None) -> None:
        if isinstance(flt, rv.QueueFilter):
            self._set_filter(flt)
        elif flt == SUPPRESSED:
            self.action_problems(only=SUPPRESSED)

    def action_problems(self, only: str | None = None) -> None:
        from review_tui.screens.problems import ProblemsScreen

        self.app.push_screen(ProblemsScreen(only=only))

    def action_incidents(self) -> None:
        from review_tui.screens.incidents import IncidentsScreen

        self.app.push_screen(IncidentsScreen())

    def action_quit(self) -> None:
        if not self.tagged:
            self.app.exit()
            return
        n = len(self.tagged)
        self.app.push_screen(
            ConfirmScreen(
                "Quit?",
                [Text(f"{n:,} tagged {'draft' if n == 1 else 'drafts'} will be forgotten.")],
            ),
            lambda yes: self.app.exit() if yes else None,
        )

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
        """Offer the current row's values as patterns, or a typed one.

        The intent, the whole signature and the sender domain are on the row; the
        draft's entity values are read by a worker and join the list when they arrive.
        """
        row = self.current()
        found = [] if row is None else self._row_patterns(row)
        dialog: PickOrTypeScreen[TagPattern] = PickOrTypeScreen(
            "Tag by pattern (within the current filter)",
            "or type intent:x · signature:x · entity:x · domain:x; a|b either, -x not "
            "(↑ back to the list)",
            found,
            lambda text: self._parse_pattern(text, dialog),
        )
        self.app.push_screen(dialog, self._pattern_chosen)
        if row is not None:
            self.load_entity_patterns(row, dialog)

    @staticmethod
    def _parse_pattern(text: str, dialog: PickOrTypeScreen[TagPattern]) -> TagPattern:
        if any(text == oid for oid, _label in dialog.choices):
            # A picked value is one term, taken whole: a signature may hold " domain:x".
            return one_term(*parse_pattern(text))
        return parse_tag_pattern(text)

    @staticmethod
    def _row_patterns(
        row: rv.QueueRow, entities: list[dict[str, Any]] | None = None
    ) -> list[tuple[str, Text]]:
        found = pattern_choices(
            intent=row.intent, signature=row.signature, sender=row.sender, entities=entities or ()
        )
        labels = []
        for pattern, kind in found:
            label = safe_line(pattern, limit=300)
            label.append(f"  {kind}", style="dim")
            labels.append((pattern, label))
        return labels

    @work(thread=True, exclusive=True, group="queue-pattern-values")
    def load_entity_patterns(self, row: rv.QueueRow, dialog: PickOrTypeScreen[TagPattern]) -> None:
        try:
            with Session(self.review.reader) as session:
                draft = session.get(Draft, row.draft_id)
                entities = list((draft.evidence or {}).get("entities") or []) if draft else []
        except Exception:  # the row's own values are already offered; typing still works
            return
        found = self._row_patterns(row, [e for e in entities if isinstance(e, dict)])
        dialog.post_message(dialog.MoreChoices(found))

    def _pattern_chosen(self, pattern: TagPattern | None) -> None:
        if pattern is not None:
            self.tag_matching(pattern)

    @work(thread=True, exclusive=True, group="queue-tag")
    def tag_matching(self, pattern: TagPattern) -> None:
        try:
            with Session(self.review.reader) as session:
                ids = rv.tag_by_pattern(session=session, pattern=pattern, flt=self.flt)
        except rv.ReviewError as exc:
            self.post_message(self.Done(str(exc), error=True))
            return
        self.post_message(self.Tagged(ids, describe_pattern(pattern)))

    def on_queue_screen_tagged(self, event: QueuePaging.Tagged) -> None:
        before = len(self.tagged)
        self.tagged.update(event.ids)
        self.review.say(
            f"{event.pattern}: {len(self.tagged) - before} more tagged ({len(event.ids)} match)"
        )
        self.reload()
