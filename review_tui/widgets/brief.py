"""The co-pilot brief as the ticket screen shows it, above the draft.

What a rep reads first, most of all when no body was written: the decision (which
article wrote the body, or why none did), risk flags, the asks one per line, the log
line that matters and what it means, the facts still missing, and the best passages.
A pure function of the brief stored with the draft; every value in it came from
customer mail or a KB file, so it all goes through `safe_text`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.text import Text

from review_tui.widgets.safe_text import safe_line

MAX_ASKS = 4
MAX_PASSAGES = 3


def brief_text(brief: Mapping[str, Any] | None) -> Text:
    out = Text("Brief  ", style="bold")
    if not brief:
        out.append("none recorded for this draft", style="dim")
        return out
    out.append_text(safe_line(brief.get("decision", ""), style="italic", limit=160))
    flags = list(brief.get("flags") or [])
    if flags:
        out.append("\n")
        out.append_text(safe_line("⚑ " + " · ".join(str(f) for f in flags), style="bold red"))
    for ask in list(brief.get("asks") or [])[:MAX_ASKS]:
        out.append("\n")
        out.append_text(safe_line(f"? {ask}", limit=160))
    log = brief.get("log")
    if isinstance(log, Mapping):
        out.append("\n")
        where = f"log {log.get('attachment', '')}:{log.get('line_no', '')} "
        out.append_text(safe_line(where + str(log.get("text", "")), style="yellow", limit=160))
        if log.get("means"):
            out.append("\n")
            out.append_text(safe_line(f"  means: {log['means']}", style="dim", limit=160))
    missing = list(brief.get("missing") or [])
    if missing:
        out.append("\n")
        out.append_text(safe_line("missing: " + ", ".join(map(str, missing)), style="bold"))
    passages = list(brief.get("passages") or [])[:MAX_PASSAGES]
    if passages:
        out.append("\n")
        line = " · ".join(
            f"{p.get('title', p.get('id', ''))} {p.get('score', 0):.1f}" for p in passages
        )
        out.append_text(safe_line("passages: " + line, style="dim", limit=200))
    return out
