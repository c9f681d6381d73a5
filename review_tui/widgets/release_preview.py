"""What a release confirmation shows: the real recipient, the subject and the body's start.

A one-key confirmation is only safe when the rep sees what will go out, so the queue
and the ticket screen build the same lines here: who receives it (and, when the draft
goes to a Reply-To address rather than the sender, both addresses and where the
recipient came from), the subject with its ticket token, and the first lines of the
body. Every value may hold customer text, so it all goes through `safe_text`.
"""

from __future__ import annotations

from rich.text import Text

from review_tui.widgets.safe_text import clean, safe_line

PREVIEW_LINES = 6


def differs(to_addr: str, from_addr: str | None) -> bool:
    """The reply goes somewhere other than the customer's From address (Reply-To)."""
    return bool(from_addr) and (from_addr or "").casefold() != to_addr.casefold()


def release_lines(to_addr: str, from_addr: str | None, subject: str, body: str) -> list[Text]:
    lines = [safe_line(f"To:      {to_addr}", style="bold")]
    if differs(to_addr, from_addr):
        lines.append(
            safe_line(
                f"         from the Reply-To header; the mail came from {from_addr}",
                style="bold yellow",
            )
        )
    lines.append(safe_line(f"Subject: {subject}"))
    body_lines = clean(body).strip("\n").splitlines()
    preview = Text(no_wrap=True, overflow="ellipsis")
    for line in body_lines[:PREVIEW_LINES]:
        preview.append_text(safe_line(f"│ {line}", style="dim", limit=110))
        preview.append("\n")
    if len(body_lines) > PREVIEW_LINES:
        preview.append(f"│ … {len(body_lines) - PREVIEW_LINES} more lines", style="dim italic")
    lines.append(preview)
    return lines
