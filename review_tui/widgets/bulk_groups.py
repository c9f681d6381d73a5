"""The bulk review's list: tagged drafts grouped by the customer they go to.

A rep releasing many replies at once must see when one customer is about to get
several of them, so the list has one block per recipient address, headed by the
address and how many messages go there, with each message's subject under it. A
message shows its problems (why it is excluded) and whether it goes to a Reply-To
address; enter or space on a message expands it to the full body, and again collapses
it. Everything quoted from a draft passes through `safe_text`.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from review_tui.widgets.safe_text import clean, safe_line
from storage.review import BulkCandidate

__all__ = ["BulkGroups", "RecipientGroup", "group_by_recipient"]

_HEADER_PREFIX = "to:"


@dataclass(frozen=True, slots=True)
class RecipientGroup:
    """The messages going to one address (compared without case), in draft order."""

    address: str
    messages: tuple[BulkCandidate, ...]

    @property
    def excluded(self) -> int:
        return sum(1 for m in self.messages if not m.eligible)


def group_by_recipient(candidates: list[BulkCandidate]) -> list[RecipientGroup]:
    """One group per recipient; most messages first, then in order of first appearance."""
    groups: dict[str, list[BulkCandidate]] = {}
    for c in candidates:
        groups.setdefault(c.to_addr.casefold(), []).append(c)
    ordered = sorted(groups.values(), key=lambda ms: -len(ms))  # stable: ties keep order
    return [RecipientGroup(address=ms[0].to_addr, messages=tuple(ms)) for ms in ordered]


def group_heading(group: RecipientGroup) -> Text:
    n = len(group.messages)
    out = safe_line(f"{group.address} — {n} {'message' if n == 1 else 'messages'}", limit=160)
    out.stylize("bold")
    if group.excluded:
        out.append(f" · {group.excluded} excluded", style="bold red")
    return out


def message_text(c: BulkCandidate, *, expanded: bool) -> Text:
    """One message under its recipient; with `expanded`, its whole body."""
    out = Text("  ")
    mark, style = ("✔", "bold green") if c.eligible else ("✘ EXCLUDED", "bold red")
    out.append(f"{'▾' if expanded else '▸'} ", style="dim")
    out.append(f"{mark} ", style=style)
    out.append_text(safe_line(f"#{c.ticket_id} {c.subject}", limit=150))
    if c.via_reply_to:
        out.append("\n")
        out.append_text(safe_line(f"      to the Reply-To address; the sender was {c.from_addr}"))
    for problem in c.problems:
        out.append("\n")
        out.append_text(safe_line(f"      {problem}", style="red"))
    if expanded:
        for line in clean(c.body).splitlines() or [""]:
            out.append("\n")
            out.append_text(safe_line(f"      │ {line}", style="dim", limit=1000))
    return out


class BulkGroups(OptionList):
    """Recipients as headings (not selectable) and their messages, each expandable."""

    BINDINGS = [
        Binding("enter,space", "select", "Expand/collapse", id="bulk.expand"),
    ]

    class Toggled(Message):
        """A message was expanded (`expanded` true) or collapsed."""

        def __init__(self, draft_id: int, expanded: bool) -> None:
            super().__init__()
            self.draft_id = draft_id
            self.expanded = expanded

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.by_id: dict[int, BulkCandidate] = {}
        self.expanded: set[int] = set()
        self.groups: list[RecipientGroup] = []

    def show(self, candidates: list[BulkCandidate]) -> None:
        """List `candidates` by recipient; messages still listed stay expanded."""
        keep = self.highlighted_option.id if self.highlighted_option else None
        self.by_id = {c.draft_id: c for c in candidates}
        self.expanded &= set(self.by_id)
        self.groups = group_by_recipient(candidates)
        options: list[Option] = []
        for group in self.groups:
            heading = f"{_HEADER_PREFIX}{group.address.casefold()}"
            options.append(Option(group_heading(group), id=heading, disabled=True))
            for c in group.messages:
                text = message_text(c, expanded=c.draft_id in self.expanded)
                options.append(Option(text, id=str(c.draft_id)))
        self.set_options(options)
        ids = [o.id for o in options]
        if keep in ids:
            self.highlighted = ids.index(keep)
        elif options:
            self.action_first()

    @on(OptionList.OptionSelected)
    def _toggle(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        oid = event.option.id or ""
        if oid.startswith(_HEADER_PREFIX) or not oid:
            return
        draft_id = int(oid)
        expanded = draft_id not in self.expanded
        if expanded:
            self.expanded.add(draft_id)
        else:
            self.expanded.discard(draft_id)
        self.replace_option_prompt(oid, message_text(self.by_id[draft_id], expanded=expanded))
        self.post_message(self.Toggled(draft_id, expanded))
