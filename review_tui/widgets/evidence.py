"""Renderers for a ticket's evidence: conversation, entities, log lines, KB, rationale.

Pure functions from storage's TicketView to `Text`, so the ticket screen stays about
keys and workers, and everything customer-supplied goes through `safe_text` once.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from review_tui.widgets.safe_text import highlighted, safe, safe_line
from storage.review import ConversationItem, TicketView


def when(item: ConversationItem) -> str:
    return item.received_at.strftime("%Y-%m-%d %H:%M UTC")


def message_text(item: ConversationItem, view: TicketView) -> Text:
    """One message of the thread; the draft's own message gets its entities marked."""
    arrow = "←" if item.direction == "inbound" else "→"
    out = Text()
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
    if item.message_pk == view.message.id:
        out.append_text(highlighted(item.text, view.entities))
    else:
        out.append_text(safe(item.text))
    return out


def entities_text(entities: tuple[dict[str, Any], ...]) -> Text:
    out = Text("Entities\n", style="bold underline")
    if not entities:
        out.append("none found\n", style="dim")
    for ent in entities:
        where = ent.get("source", "body")
        out.append(f"{ent.get('label', '?'):<13}", style="bold")
        out.append_text(safe_line(ent.get("text", ""), limit=60))
        out.append(f"  {where} {ent.get('start', '?')}–{ent.get('end', '?')}\n", style="dim")
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


def rationale_text(view: TicketView) -> Text:
    draft = view.draft
    conf = "?" if draft.confidence is None else f"{draft.confidence:.2f}"
    out = Text("Why\n", style="bold underline")
    out.append_text(safe(draft.rationale or "no rationale recorded"))
    out.append("\n")
    out.append_text(
        safe_line(
            f"intent {draft.intent or '?'} at {conf} · model {draft.model_version or 'unknown'}",
            style="dim",
        )
    )
    return out
