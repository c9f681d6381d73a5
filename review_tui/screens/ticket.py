"""The ticket screen: the conversation, the evidence, and the draft in an editor.

Opening a ticket takes a lease for the rep (others see who holds it); leaving gives it
back. Saving is a compare-and-set on the draft version: if another rep saved first the
rep sees both texts and chooses. Release writes outbox rows through storage and only
after a one-key confirmation that shows recipient and subject; the UI never sends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.text import Text
from sqlmodel import Session
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Static, TextArea

from review_tui.screens.dialogs import ChoiceScreen, ConfirmScreen, ConflictScreen
from review_tui.widgets import evidence as ev
from review_tui.widgets.safe_text import clean, safe_line
from storage import review as rv
from storage.db import session_scope

if TYPE_CHECKING:
    from review_tui.app import ReviewApp


class TicketScreen(Screen[None]):
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", priority=True, id="ticket.save"),
        Binding("escape", "leave_editor", "Stop editing", id="ticket.leave_editor"),
        Binding("e", "edit", "Edit draft", id="ticket.edit"),
        Binding("i", "intent", "Intent", id="ticket.intent"),
        Binding("a", "article", "KB article", id="ticket.article"),
        Binding("r", "release", "Release", id="ticket.release"),
        Binding("d", "discard", "Discard", id="ticket.discard"),
        Binding("o", "take_over", "Take over", id="ticket.take_over"),
        Binding("q", "back", "Back", id="ticket.back"),
    ]

    class Loaded(Message):
        def __init__(self, view: rv.TicketView, lease: rv.Lease, request: int) -> None:
            super().__init__()
            self.view = view
            self.lease = lease
            self.request = request

    class LeaseChanged(Message):
        def __init__(self, lease: rv.Lease) -> None:
            super().__init__()
            self.lease = lease

    class Saved(Message):
        def __init__(self, version: int, body: str, note: str) -> None:
            super().__init__()
            self.version = version
            self.body = body
            self.note = note

    class Conflict(Message):
        def __init__(self, error: rv.VersionConflict) -> None:
            super().__init__()
            self.error = error

    class Finished(Message):
        """The draft left the queue (released or discarded): go back."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class Changed(Message):
        """A write changed the ticket: say so and reload it."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class Failed(Message):
        def __init__(self, text: str, *, reload: bool = False) -> None:
            super().__init__()
            self.text = text
            self.reload = reload

    def __init__(self, draft_id: int, *, edit: bool = False) -> None:
        super().__init__()
        self.draft_id = draft_id
        self.start_editing = edit
        self.view: rv.TicketView | None = None
        self.lease: rv.Lease | None = None
        self.version = 0
        self.saved_body = ""
        self.warned_unsaved = False
        self.requested = 0

    @property
    def review(self) -> ReviewApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("loading…", id="ticket-head", markup=False)
        yield Static("", id="lease-banner", markup=False)
        with Horizontal(id="ticket-main"):
            yield VerticalScroll(id="conversation")
            with VerticalScroll(id="evidence"):
                yield Static("", id="ev-entities", markup=False)
                yield Static("", id="ev-logs", markup=False)
                yield Static("", id="ev-kb", markup=False)
                yield Static("", id="ev-why", markup=False)
        yield Static("", id="draft-head", markup=False)
        yield TextArea("", id="draft", soft_wrap=True, read_only=True)
        yield Footer()

    def on_mount(self) -> None:
        self.load()
        every = max(5.0, self.review.settings.lease_minutes * 60 / 3)
        self.set_interval(every, self.renew_lease)

    @work(thread=True, exclusive=True, group="ticket-lease")
    def renew_lease(self) -> None:
        """Keep holding the ticket while it is open; notice if someone took it over."""
        if self.view is None or self.lease is None or not self.lease.mine:
            return
        settings = self.review.settings
        try:
            lease = rv.acquire_lease(
                engine=self.review.engine,
                ticket_id=self.view.ticket.id or 0,
                actor=settings.actor,
                minutes=settings.lease_minutes,
            )
        except Exception:  # the next renewal tries again; release re-checks anyway
            return
        self.post_message(self.LeaseChanged(lease))

    def on_ticket_screen_lease_changed(self, event: LeaseChanged) -> None:
        self.lease = event.lease
        self._render_lease()

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
            lease = rv.acquire_lease(
                engine=self.review.engine,
                ticket_id=view.ticket.id or 0,
                actor=settings.actor,
                minutes=settings.lease_minutes,
            )
        except Exception as exc:
            self.post_message(self.Failed(f"cannot open draft {self.draft_id}: {exc}"))
            return
        self.post_message(self.Loaded(view, lease, request))

    def on_ticket_screen_loaded(self, event: Loaded) -> None:
        if event.request != self.requested:
            return  # a newer load was asked for after this one started
        self.view, self.lease = event.view, event.lease
        draft = event.view.draft
        if self.is_dirty():
            self.review.say("reloaded the evidence; your unsaved edits are kept")
        else:
            self.version = draft.version
            self.saved_body = clean(draft.body)
            editor = self.query_one("#draft", TextArea)
            editor.load_text(self.saved_body)
        self._render_view(event.view)
        if self.start_editing:
            self.start_editing = False
            self.action_edit()

    def _render_view(self, view: rv.TicketView) -> None:
        draft, ticket = view.draft, view.ticket
        conf = "?" if draft.confidence is None else f"{draft.confidence:.2f}"
        self.query_one("#ticket-head", Static).update(
            safe_line(
                f"Ticket #{ticket.id} · {ticket.subject} · {ticket.customer_name or ''} "
                f"<{ticket.customer_addr or ''}> · {draft.intent or '?'} {conf} · "
                f"bucket {ticket.signature or '-'} · {draft.state}",
                limit=400,
            )
        )
        self._render_lease()
        box = self.query_one("#conversation", VerticalScroll)
        box.remove_children()
        box.mount_all(
            Static(ev.message_text(item, view), classes="message", markup=False)
            for item in view.conversation
        )
        self.query_one("#ev-entities", Static).update(ev.entities_text(view.entities))
        self.query_one("#ev-logs", Static).update(ev.logs_text(view.log_findings))
        self.query_one("#ev-kb", Static).update(
            ev.suggestions_text(view.suggestions, draft.article_id)
        )
        self.query_one("#ev-why", Static).update(ev.rationale_text(view))
        self._render_draft_head()

    def _render_lease(self) -> None:
        banner = self.query_one("#lease-banner", Static)
        lease = self.lease
        held = lease is not None and not lease.mine
        banner.set_class(held, "held")
        if lease is not None and not lease.mine:
            until = lease.expires_at.strftime("%H:%M UTC")
            banner.update(
                safe_line(
                    f"Being worked on by {lease.holder} until {until} — press o to take over",
                    style="bold",
                )
            )
        else:
            banner.update("")

    def _render_draft_head(self) -> None:
        if self.view is None:
            return
        draft = self.view.draft
        body = self.query_one("#draft", TextArea).text
        left = rv.draft_placeholders(body, draft.unfilled or [])
        flags = [f"v{self.version}", draft.state]
        if draft.state == "stale":
            flags.append("the customer wrote again: re-read, then ctrl+s to make it releasable")
        if left:
            flags.append("unfilled: " + ", ".join(left))
        if self.is_dirty():
            flags.append("unsaved")
        self.query_one("#draft-head", Static).update(
            safe_line(
                f"Draft to {draft.to_addr} · "
                f"{rv.subject_with_token(draft.subject, draft.ticket_id)}"
                f" · {' · '.join(flags)}",
                limit=400,
            )
        )

    def on_text_area_changed(self, _event: TextArea.Changed) -> None:
        self._render_draft_head()

    def is_dirty(self) -> bool:
        return self.view is not None and self.query_one("#draft", TextArea).text != self.saved_body

    def on_ticket_screen_failed(self, event: Failed) -> None:
        self.review.say(event.text, error=True)
        if self.view is None:
            self.app.pop_screen()
        elif event.reload:
            self.load()

    # ------------------------------------------------------------ editing

    def action_edit(self) -> None:
        if self.view is None:
            return
        editor = self.query_one("#draft", TextArea)
        editor.read_only = False
        editor.move_cursor(editor.document.end)
        editor.focus()

    def action_leave_editor(self) -> None:
        editor = self.query_one("#draft", TextArea)
        editor.read_only = True
        self.query_one("#conversation").focus()

    def action_save(self) -> None:
        if self.view is None:
            return
        body = self.query_one("#draft", TextArea).text
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
            self.post_message(self.Conflict(exc))
            return
        except Exception as exc:
            self.post_message(self.Failed(f"not saved: {exc}"))
            return
        self.post_message(self.Saved(version, body, f"saved (version {version})"))

    def on_ticket_screen_saved(self, event: Saved) -> None:
        self.version = event.version
        self.saved_body = event.body
        self.review.say(event.note)
        self.load()

    def on_ticket_screen_conflict(self, event: Conflict) -> None:
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
            self.post_message(self.Failed(f"cannot re-draft from {article_id}: {exc}"))
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
            self.post_message(self.Conflict(exc))
            return
        except Exception as exc:
            self.post_message(self.Failed(f"not re-drafted: {exc}"))
            return
        self.post_message(self.Saved(version, clean(body), f"re-drafted from {title}"))

    def _new_body(self, article_id: str, title: str, view: rv.TicketView) -> tuple[str, list[str]]:
        """The new body: the configured drafter's, or a pointer to the article."""
        redraft = self.review.settings.redraft
        if redraft is None:
            return f"{view.draft.body.rstrip()}\n\nSee: {title}\n", list(view.draft.unfilled)
        name = view.ticket.customer_name or ""
        return redraft(article_id, list(view.entities), name, view.ticket.id or 0)

    # ------------------------------------------------------------ release, discard, lease

    def action_release(self) -> None:
        view = self.view
        if view is None or self._unsaved("releasing"):
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
        lines = [
            safe_line(f"To:      {draft.to_addr}"),
            safe_line(f"Subject: {rv.subject_with_token(draft.subject, draft.ticket_id)}"),
        ]
        self.app.push_screen(ConfirmScreen("Release this reply?", lines), self._release_confirmed)

    def _release_confirmed(self, yes: bool | None) -> None:
        if yes and self.view is not None:
            settings = self.review.settings
            draft_id, version, to = self.draft_id, self.version, self.view.draft.to_addr
            self._run(
                lambda: rv.release(
                    engine=self.review.engine,
                    draft_ids=[draft_id],
                    actor=settings.actor,
                    from_address=settings.from_address,
                    expected_versions={draft_id: version},
                ),
                f"released reply to {to}",
                finish=True,
            )

    def action_discard(self) -> None:
        if self.view is None:
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
            self.post_message(self.Failed(str(exc), reload=True))
            return
        except Exception as exc:
            self.post_message(self.Failed(f"failed: {exc}", reload=True))
            return
        if finish:
            self.post_message(self.Finished(success))
        else:
            self.post_message(self.Changed(success))

    def on_ticket_screen_changed(self, event: Changed) -> None:
        self.review.say(event.text)
        self.load()

    def on_ticket_screen_finished(self, event: Finished) -> None:
        self.review.say(event.text)
        self._leave()

    def _unsaved(self, doing: str) -> bool:
        if self.is_dirty():
            self.review.say(f"save your edits (ctrl+s) before {doing}", error=True)
            return True
        return False

    def action_back(self) -> None:
        if self.is_dirty() and not self.warned_unsaved:
            self.warned_unsaved = True
            self.review.say(
                "unsaved edits: ctrl+s saves, q again leaves without saving", error=True
            )
            return
        self._leave()

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
