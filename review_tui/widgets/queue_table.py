"""The queue table: one page of rows, never the whole queue.

Filling a DataTable costs about 75 µs a row, so the table only ever holds the page the
database returned (200 rows by default); sorting, filtering and counting happen in SQL.
Every cell is a `Text` because DataTable parses plain strings as markup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from rich.text import Text
from textual.widgets import DataTable

from review_tui.widgets.safe_text import safe_line
from storage.review import QueueRow

COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("tag", "", 1),
    ("flags", "", 5),  # "!" urgent, "S" security, the language when not English
    ("age", "Age", 6),
    ("sender", "Sender", 24),
    ("subject", "Subject", 32),
    ("intent", "Intent", 23),  # "access_permissions 0.99"
    ("state", "State", 12),
    ("holder", "Held by", 10),
    ("bucket", "Bucket", 14),
)

SORT_LABELS = {
    "age": "age",
    "sender": "sender",
    "subject": "subject",
    "intent": "intent",
    "confidence": "confidence",
    "signature": "bucket",
    "state": "state",
}

STATE_STYLES = {
    "drafted": "green",
    "needs_triage": "yellow",
    "stale": "magenta",
    "failed": "red",
}


def age(at: datetime, now: datetime) -> str:
    """Compact age: 45s, 12m, 3h05, 2d04."""
    seconds = max(0, int((now - at).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h{minutes % 60:02d}"
    return f"{hours // 24}d{hours % 24:02d}"


def intent_cell(row: QueueRow) -> Text:
    conf = "" if row.confidence is None else f" {row.confidence:.2f}"
    return safe_line(f"{row.intent or '?'}{conf}")


def flags_cell(row: QueueRow) -> Text:
    out = Text()
    if "urgent" in row.flags:
        out.append("!", style="bold red")
    if "security" in row.flags:
        out.append("S", style="bold magenta")
    for flag in row.flags:
        if flag not in ("urgent", "security"):
            out.append(flag[:2], style="yellow")
    return out


class QueueTable(DataTable[Text]):
    """Rows are keyed by draft id so the cursor survives a refresh."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        for key, label, width in COLUMNS:
            self.add_column(Text(label), key=key, width=width)

    def show(
        self,
        rows: Iterable[QueueRow],
        *,
        tagged: set[int],
        now: datetime,
        holder_of: Callable[[QueueRow], str],
    ) -> None:
        keep = self.current_draft_id()
        keep_row = self.cursor_row
        self.clear()
        for row in rows:
            self.add_row(*self._cells(row, tagged, now, holder_of(row)), key=str(row.draft_id))
        if self.row_count:
            target = keep_row
            if keep is not None and str(keep) in self.rows:
                target = self.get_row_index(str(keep))
            self.move_cursor(row=min(target, self.row_count - 1), animate=False)

    def _cells(self, row: QueueRow, tagged: set[int], now: datetime, holder: str) -> list[Text]:
        return [
            Text("●", style="bold cyan") if row.draft_id in tagged else Text(" "),
            flags_cell(row),
            Text(age(row.received_at, now)),
            safe_line(row.sender, limit=60),
            safe_line(row.subject, limit=120),
            intent_cell(row),
            Text(row.state, style=STATE_STYLES.get(row.state, "")),
            safe_line(holder, style="bold red" if holder else "", limit=30),
            safe_line(row.signature or "", limit=40),
        ]

    def set_tag_mark(self, draft_id: int, tagged: bool) -> None:
        key = str(draft_id)
        if key in self.rows:
            mark = Text("●", style="bold cyan") if tagged else Text(" ")
            self.update_cell(key, "tag", mark)

    def current_draft_id(self) -> int | None:
        if not self.row_count or self.cursor_row < 0:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:  # the cursor points past the rows during a clear
            return None
        return int(key.value) if key.value is not None else None
