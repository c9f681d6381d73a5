"""Renderers for a ticket's evidence: conversation, entities, log lines, KB, rationale.

Pure functions from storage's TicketView to `Text`, so the ticket screen stays about
keys and workers, and everything customer-supplied goes through `safe_text` once. Our
own released replies are in the conversation too, marked as ours with their delivery
state, so a rep never answers twice or contradicts what was already sent. The Why panel
starts with the desk's reasons: the routing rule, the priority's source, who has the
ticket, its status and when our reply is due.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.text import Text

from review_tui.widgets.desk import desk_lines
from review_tui.widgets.safe_text import highlighted, safe, safe_line
from storage.review import ConversationItem, TicketView


def when(item: ConversationItem) -> str:
    return item.received_at.strftime("%Y-%m-%d %H:%M UTC")


DELIVERY_STYLES = {
    "pending": "yellow",
    "sending": "yellow",
    "sent": "bold green",
    "failed": "bold red",
    "uncertain": "bold magenta",
}


def _reply_head(item: ConversationItem) -> Text:
    """`→ OUR REPLY · when · to · released by · delivery state`."""
    out = Text("→ OUR REPLY ", style="bold reverse cyan")
    out.append_text(
        safe_line(
            f" {when(item)} · to {item.sender} · released by {item.released_by or '?'} · ",
            style="bold cyan",
        )
    )
    out.append(item.state, style=DELIVERY_STYLES.get(item.state, "bold"))
    if item.sent_at is not None and item.state == "sent":
        out.append(f" {item.sent_at.strftime('%H:%M UTC')}", style="dim")
    return out


def message_text(item: ConversationItem, view: TicketView) -> Text:
    """One message of the thread; the draft's own message gets its entities marked."""
    out = Text()
    if item.ours:
        out.append_text(_reply_head(item))
    else:
        arrow = "←" if item.direction == "inbound" else "→"
        out.append_text(safe_line(f"{arrow} {when(item)} · {item.sender}", style="bold"))
    out.append("\n")
    out.append_text(safe_line(item.subject, style="italic"))
    out.append("\n")
    for att in item.attachments:
        size = int(att.get("size", 0) or 0)
        out.append_text(
            safe_line(
                f"📎 {att.get('name', '?')} ({size:,} bytes, {att.get('content_type', '')})",
                style="cyan",
            )
        )
        out.append("\n")
    out.append("\n")
    if not item.ours and item.message_pk == view.message.id:
        out.append_text(highlighted(item.text, view.entities))
    else:
        out.append_text(safe(item.text))
    return out


def entities_text(entities: tuple[dict[str, Any], ...]) -> Text:
    out = Text("Entities\n", style="bold underline")
    if not entities:
        out.append("none found\n", style="dim")
    for ent in entities:
        out.append_text(safe_line(f"{ent.get('label', '?'):<13}", style="bold", limit=40))
        out.append_text(safe_line(ent.get("text", ""), limit=60))
        out.append("\n")
    return out


def logs_text(findings: tuple[dict[str, Any], ...]) -> Text:
    out = Text("Log evidence\n", style="bold underline")
    if not findings:
        out.append("no log attachments\n", style="dim")
    for f in findings:
        out.append_text(
            safe_line(
                f"{f['attachment']}: {f['error_lines']:,} error lines of "
                f"{f['total_lines']:,} · signature {f['signature']}",
                style="bold",
            )
        )
        out.append("\n")
        for line in f["lines"]:
            out.append(f"  L{line['line_no']}: ", style="cyan")
            out.append_text(safe_line(line["text"], limit=160))
            out.append("\n")
    return out


def suggestions_text(suggestions: tuple[dict[str, Any], ...], current: str | None) -> Text:
    out = Text("KB suggestions (a to re-draft)\n", style="bold underline")
    if not suggestions:
        out.append("none\n", style="dim")
    for s in suggestions:
        mark = "▶ " if s["article_id"] == current else "  "
        terms = ", ".join(str(t) for t in s["matched_terms"])
        out.append(f"{mark}{s['score']:.2f} ", style="bold")
        out.append_text(safe_line(f"{s['title']} [{s['article_id']}]", limit=80))
        if terms:
            out.append_text(safe_line(f" — {terms}", style="dim", limit=60))
        out.append("\n")
    return out


def label_text(view: TicketView) -> str:
    """The intent and who stands behind it: the model's confidence, or the rep who set it."""
    draft = view.draft
    if view.label_set_by:
        return f"{draft.intent or '?'} set by {view.label_set_by}"
    conf = "?" if draft.confidence is None else f"{draft.confidence:.2f}"
    return f"{draft.intent or '?'} {conf}"


def rationale_text(view: TicketView, now: datetime) -> Text:
    """Why the ticket is where it is (status, owner, routing, priority, due), then why
    the draft says what it says."""
    draft = view.draft
    conf = "?" if draft.confidence is None else f"{draft.confidence:.2f}"
    out = Text("Why\n", style="bold underline")
    out.append_text(desk_lines(view.ticket, now))
    out.append("\n\n")
    out.append_text(safe(draft.rationale or "no rationale recorded"))
    out.append("\n")
    out.append_text(
        safe_line(
            f"intent {draft.intent or '?'} "
            + (f"set by {view.label_set_by}" if view.label_set_by else f"at {conf}")
            + f" · model {draft.model_version or 'unknown'}",
            style="dim",
        )
    )
    return out
