"""The ticket screen's work on the draft itself: edit, save, relabel, re-draft.

The screen is either reading (keys act on the ticket) or editing (keys type into the
draft; only ctrl+s and escape act), and the draft's header always says which. `e`
starts editing at the top of the draft; saving or escape go back to reading, so the
next `r`, `i` or `q` acts instead of typing. Saving is a compare-and-set on the draft
version: if another rep saved first the rep sees both texts and chooses
(`ConflictScreen`). Relabelling records a correction for
retraining; re-drafting asks the configured drafter for a body from a KB article.
"""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.widgets import TextArea

from review_tui.screens import ticket_events as events
from review_tui.screens.dialogs import ChoiceScreen, ConflictScreen
from review_tui.screens.ticket_writes import TicketWrites
from review_tui.widgets.safe_text import clean, safe_line
from storage import review as rv
from storage.db import session_scope

__all__ = ["TicketEditing"]


class TicketEditing(TicketWrites):
    """Editing and saving the draft, relabelling the intent, re-drafting from the KB."""

    def action_edit(self) -> None:
        if self.view is None:
            return
        editor = self.query_one("#draft", TextArea)
        editor.read_only = False
        editor.move_cursor((0, 0))
        editor.scroll_home(animate=False)
        editor.focus()
        self._set_editing(True)

    def action_leave_editor(self) -> None:
        editor = self.query_one("#draft", TextArea)
        editor.read_only = True
        self.query_one("#conversation").focus()
        self._set_editing(False)

    def _set_editing(self, editing: bool) -> None:
        self.editing = editing
        self.set_class(editing, "editing")
        self._render_draft_head()
        self.refresh_bindings()

    def action_save(self) -> None:
        if self.view is None:
            return
        body = self.query_one("#draft", TextArea).text
        self.action_leave_editor()
        self.save(body, self.version)

    @work(thread=True, exclusive=True, group="ticket-save")
    def save(self, body: str, expected: int) -> None:
        try:
            with session_scope(self.review.engine) as session:
                version = rv.save_draft(
                    session=session,
                    draft_id=self.draft_id,
                    body=body,
                    expected_version=expected,
                    actor=self.review.settings.actor,
                    clear_stale=True,
                )
        except rv.VersionConflict as exc:
            self.post_message(events.Conflict(exc))
            return
        except Exception as exc:
            self.post_message(events.Failed(f"not saved: {exc}"))
            return
        self.post_message(events.Saved(version, body, f"saved (version {version})"))

    def on_ticket_screen_saved(self, event: events.Saved) -> None:
        self.version = event.version
        self.saved_body = event.body
        self.review.say(event.note)
        self.load()

    def on_ticket_screen_conflict(self, event: events.Conflict) -> None:
        err = event.error
        self.app.push_screen(
            ConflictScreen(who=err.updated_by or "another rep", mine=err.mine, theirs=err.theirs),
            lambda choice: self._resolve(choice, err),
        )

    def _resolve(self, choice: str | None, err: rv.VersionConflict) -> None:
        if choice == "mine":
            self.save(err.mine, err.current_version)
        elif choice == "theirs":
            self.version = err.current_version
            self.saved_body = clean(err.theirs)
            self.query_one("#draft", TextArea).load_text(self.saved_body)
            self._render_draft_head()

    # ------------------------------------------------------------ relabel, re-draft

    def action_intent(self) -> None:
        if self.view is None or self._unsaved("changing the intent"):
            return
        options = [(name, Text(name)) for name in self.review.settings.intents]
        self.app.push_screen(
            ChoiceScreen(
                "Change intent (recorded for retraining)",
                options,
                current=self.view.draft.intent or "",
            ),
            self._intent_chosen,
        )

    def _intent_chosen(self, intent: str | None) -> None:
        if intent:
            self._run(
                lambda: rv.relabel(
                    engine=self.review.engine,
                    draft_id=self.draft_id,
                    new_intent=intent,
                    actor=self.review.settings.actor,
                ),
                f"intent set to {intent}; correction recorded",
            )

    def action_article(self) -> None:
        if self.view is None or self._unsaved("re-drafting"):
            return
        if not self.view.suggestions:
            self.review.say("no KB suggestions for this ticket", error=True)
            return
        options = [
            (s["article_id"], safe_line(f"{s['score']:.2f}  {s['title']} [{s['article_id']}]"))
            for s in self.view.suggestions
        ]
        self.app.push_screen(
            ChoiceScreen(
                "Re-draft from KB article", options, current=self.view.draft.article_id or ""
            ),
            self._article_chosen,
        )

    def _article_chosen(self, article_id: str | None) -> None:
        if article_id and self.view is not None:
            self.redraft(article_id, self.view, self.version)

    @work(thread=True, exclusive=True, group="ticket-save")
    def redraft(self, article_id: str, view: rv.TicketView, expected: int) -> None:
        settings = self.review.settings
        title = next(str(s["title"]) for s in view.suggestions if s["article_id"] == article_id)
        try:
            body, unfilled = self._new_body(article_id, title, view)
        except Exception as exc:  # the drafting code refused: keep the draft as it is
            self.post_message(events.Failed(f"cannot re-draft from {article_id}: {exc}"))
            return
        try:
            with session_scope(self.review.engine) as session:
                version = rv.choose_article(
                    session=session,
                    draft_id=self.draft_id,
                    article_id=article_id,
                    body=body,
                    expected_version=expected,
                    actor=settings.actor,
                    unfilled=unfilled,
                )
        except rv.VersionConflict as exc:
            self.post_message(events.Conflict(exc))
            return
        except Exception as exc:
            self.post_message(events.Failed(f"not re-drafted: {exc}"))
            return
        self.post_message(events.Saved(version, clean(body), f"re-drafted from {title}"))

    def _new_body(self, article_id: str, title: str, view: rv.TicketView) -> tuple[str, list[str]]:
        """The new body: the configured drafter's, or a pointer to the article."""
        redraft = self.review.settings.redraft
        if redraft is None:
            return f"{view.draft.body.rstrip()}\n\nSee: {title}\n", list(view.draft.unfilled)
        name = view.ticket.customer_name or ""
        return redraft(article_id, list(view.entities), name, view.ticket.id or 0)
