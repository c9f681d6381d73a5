"""The ticket screen's layout and how a loaded ticket is drawn into it.

`TicketLayout.compose` is the one place that decides what the screen shows and in which
order: the ticket header, the lease banner, the conversation beside the evidence, then
the draft's header and editor. A new panel goes there, with its drawing beside the
`_render_*` methods; the acts on the draft (saving, releasing, ...) build on this class
in their own modules and never lay out widgets themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static, TextArea

from review_tui.widgets import evidence as ev
from review_tui.widgets.brief import brief_text
from review_tui.widgets.release_preview import differs
from review_tui.widgets.safe_text import safe_line
from storage import review as rv

if TYPE_CHECKING:
    from review_tui.app import ReviewApp

__all__ = ["TicketLayout"]


def ticket_head(view: rv.TicketView) -> Text:
    """Two lines, each cut at the edge: the ticket, its label and state, then the subject
    (cut first); who wrote, and where the reply goes when that is somewhere else."""
    draft, ticket = view.draft, view.ticket
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append_text(
        safe_line(
            f"Ticket #{ticket.id} · {ev.label_text(view)} · {draft.state} · "
            f"bucket {ticket.signature or '-'} · {ticket.subject}",
            style="bold",
            limit=400,
        )
    )
    sender = view.message.from_addr or ticket.customer_addr or ""
    out.append("\n")
    out.append_text(safe_line(f"From {ticket.customer_name or ''} <{sender}>", limit=200))
    if differs(draft.to_addr, sender):
        out.append_text(
            safe_line(f" · Reply-To {draft.to_addr} — the draft goes there", style="bold yellow")
        )
    return out


class TicketLayout(Screen[None]):
    """The ticket screen's widgets, its state and its drawing; no acts."""

    def __init__(self, draft_id: int, *, edit: bool = False) -> None:
        super().__init__()
        self.draft_id = draft_id
        self.start_editing = edit
        self.view: rv.TicketView | None = None
        self.lease: rv.Lease | None = None
        self.version = 0
        self.saved_body = ""
        self.editing = False  # reading (keys act) or editing (keys type into the draft)
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
        yield Static("", id="draft-brief", markup=False)
        yield Static("", id="draft-head", markup=False)
        yield TextArea("", id="draft", soft_wrap=True, read_only=True)
        yield Footer(compact=True)

    def _render_view(self, view: rv.TicketView) -> None:
        draft = view.draft
        self.query_one("#ticket-head", Static).update(ticket_head(view))
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
        now = self.review.settings.clock()
        self.query_one("#ev-why", Static).update(ev.rationale_text(view, now))
        self.query_one("#draft-brief", Static).update(
            brief_text((draft.evidence or {}).get("brief"))
        )
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
        head = (
            Text(" EDITING ", style="bold reverse yellow")
            + Text(" ctrl+s saves · escape stops editing · ", style="yellow")
            if self.editing
            else Text(" READING ", style="bold reverse") + Text(" e edits · ", style="dim")
        )
        head.append_text(
            safe_line(
                f"{' · '.join(flags)} · to {draft.to_addr} · "
                f"{rv.subject_with_token(draft.subject, draft.ticket_id)}",
                limit=400,
            )
        )
        head.no_wrap, head.overflow = True, "ellipsis"
        self.query_one("#draft-head", Static).update(head)

    def on_text_area_changed(self, _event: TextArea.Changed) -> None:
        self._render_draft_head()

    def is_dirty(self) -> bool:
        return self.view is not None and self.query_one("#draft", TextArea).text != self.saved_body

    def _unsaved(self, doing: str) -> bool:
        if self.is_dirty():
            self.review.say(f"save your edits (ctrl+s) before {doing}", error=True)
            return True
        return False

    def load(self) -> None:
        """(Re)load the ticket; the screen itself defines how (see `TicketScreen`)."""
        raise NotImplementedError
