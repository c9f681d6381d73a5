"""Writing an incident's update, and reading every message it will become.

The editor opens on the text to start from (the default notice, or the last update
customers read) and ctrl+s saves it through storage, which checks the placeholders;
a refused text stays in the editor with the reason, and a saved one closes it, so the
next key acts on the incident again. The preview shows each personalised message as
its customer will get it (to, subject, body, problems), scrollable, and `R` from there
goes straight to the release. Values filled into a message come from customer mail,
so everything shown passes through `safe_text`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Static, TextArea

from review_tui.screens.dialogs import ConfirmScreen
from review_tui.widgets.safe_text import safe, safe_line
from storage.incidents.notice import NoticeMessage, save_notice
from storage.incidents.personal import PLACEHOLDERS
from storage.review.types import ReviewError

if TYPE_CHECKING:
    from review_tui.app import ReviewApp

__all__ = ["NoticeEditorScreen", "NoticePreviewScreen"]


class NoticeEditorScreen(ModalScreen[int | None]):
    """Edit the update's body; dismissed with the saved notice id, or None."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", priority=True, id="notice.save"),
        Binding("escape", "cancel", "Cancel", id="notice.cancel"),
    ]

    class Saved(Message):
        def __init__(self, notice_id: int) -> None:
            super().__init__()
            self.notice_id = notice_id

    class Refused(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, incident_id: int, *, status: str, body: str) -> None:
        super().__init__(classes="dialog")
        self.incident_id = incident_id
        self.status = status
        self.start = body

    @property
    def review(self) -> ReviewApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        names = " ".join(f"{{{p}}}" for p in PLACEHOLDERS)
        with Vertical(classes="dialog-box wide"):
            yield Static(
                Text(f"Update for incident #{self.incident_id} — announces: {self.status}",
                     style="bold"),
                classes="dialog-title",
            )  # fmt: skip
            yield Static(
                Text(f"{names}; {{hosts|fallback}} · ctrl+s saves · escape cancels", style="dim")
            )
            yield TextArea(self.start, id="notice-body", soft_wrap=True)
            yield Static("", id="notice-error", classes="error", markup=False)

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def action_save(self) -> None:
        self.save(self.query_one(TextArea).text)

    @work(thread=True, exclusive=True, group="notice-save")
    def save(self, body: str) -> None:
        try:
            notice_id = save_notice(
                self.review.engine,
                self.incident_id,
                body=body,
                actor=self.review.settings.actor,
                status=self.status,
            )
        except ReviewError as exc:
            self.post_message(self.Refused(f"not saved: {exc}"))
            return
        except Exception as exc:
            self.post_message(self.Refused(f"not saved: {exc}"))
            return
        self.post_message(self.Saved(notice_id))

    def on_notice_editor_screen_saved(self, event: Saved) -> None:
        self.review.say(f"update saved ({self.status}): p previews, R releases")
        self.dismiss(event.notice_id)

    def on_notice_editor_screen_refused(self, event: Refused) -> None:
        self.query_one("#notice-error", Static).update(Text(event.text))
        self.review.say(event.text, error=True)

    def action_cancel(self) -> None:
        if self.query_one(TextArea).text == self.start:
            self.dismiss(None)
            return
        self.app.push_screen(
            ConfirmScreen("Leave without saving?", [Text("The changed text is lost.")]),
            self._leave,
        )

    def _leave(self, yes: bool | None) -> None:
        if yes:
            self.dismiss(None)


def message_text(number: int, total: int, msg: NoticeMessage) -> Text:
    out = Text(f"{number}/{total}  To: ", style="bold")
    out.append_text(safe_line(msg.address, style="bold"))
    others = [t for t in msg.answers if t != msg.ticket_id]
    thread = f"  (into ticket #{msg.ticket_id}"
    thread += f"; also answers {', '.join(f'#{t}' for t in others)})" if others else ")"
    out.append(thread, style="dim")
    out.append("\nSubject: ", style="bold")
    out.append_text(safe_line(msg.subject, limit=300))
    out.append("\n")
    out.append_text(safe(msg.body))
    for problem in msg.problems:
        out.append("\n")
        out.append_text(safe_line(f"⚠ {problem}", style="bold red"))
    return out


class NoticePreviewScreen(ModalScreen[str | None]):
    """Every message of the update; dismissed with "release" when `R` is pressed."""

    BINDINGS = [
        Binding("escape,q", "dismiss_with('')", "Back", id="preview.back"),
        Binding("R", "dismiss_with('release')", "Release", id="preview.release"),
    ]

    def __init__(self, messages: list[NoticeMessage], *, status: str) -> None:
        super().__init__(classes="dialog")
        self.messages = messages
        self.status = status

    def compose(self) -> ComposeResult:
        n = len(self.messages)
        problems = sum(1 for m in self.messages if m.problems)
        title = f"The {self.status} update: {n} {'message' if n == 1 else 'messages'}"
        title += f", {problems} with problems" if problems else ", one per customer"
        with Vertical(classes="dialog-box wide"):
            yield Static(Text(title, style="bold"), classes="dialog-title")
            with VerticalScroll(id="notice-preview"):
                for number, msg in enumerate(self.messages, start=1):
                    yield Static(message_text(number, n, msg), classes="preview-message")
            yield Static(Text("↑/↓ scroll · R releases · escape goes back", style="dim"))

    def on_mount(self) -> None:
        self.query_one("#notice-preview", VerticalScroll).focus()

    def action_dismiss_with(self, choice: str) -> None:
        self.dismiss(choice or None)
