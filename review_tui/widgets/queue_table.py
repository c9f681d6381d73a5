"""The queue table: one page of rows, never the whole queue.

Filling a DataTable costs about 75 µs a row, so the table only ever holds the page the
database returned (200 rows by default); sorting, filtering and counting happen in SQL.
Every cell is a `Text` because DataTable parses plain strings as markup. The columns
fit the terminal: on a narrow one the least useful go first (Bucket, Held by, Priority,
then Owner) and the subject takes what is left, so Due, State and Intent always stay in
view. Due is the time left until our reply is due, red once it is late.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from rich.text import Text
from textual import events
from textual.widgets import DataTable

from review_tui.widgets.desk import due_text, owner_text, priority_text, span, status_text
from review_tui.widgets.safe_text import safe_line
from storage.review import QueueRow

COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("tag", "", 1),
    ("new", "", 3),  # "new": arrived since the rep last loaded the queue
    ("flags", "", 4),  # "!" urgent, "S" security, the language when not English
    ("due", "Due", 10),  # "3h10", "-1h05 late"
    ("age", "Age", 4),
    ("sender", "Sender", 24),
    ("subject", "Subject", 32),
    ("intent", "Intent", 23),  # "access_permissions 0.99"
    ("state", "State", 12),
    ("priority", "Prio", 6),
    ("owner", "Owner", 12),  # the owner, or the team of a ticket nobody owns
    ("holder", "Held by", 10),
    ("bucket", "Bucket", 14),
)
# Dropped in this order when the terminal is too narrow for every column. Priority goes
# before Owner: the reply targets follow priority, so Due already carries most of it.
DROP_FIRST = ("bucket", "holder", "priority", "owner")
MIN_SUBJECT = 16
# Then, in this order, these narrow down to a floor (the intent keeps its confidence).
SHRINK = (("sender", 16), ("intent", 16), ("sender", 12))
ROOMY_SUBJECT = 24  # narrower than this, a column from DROP_FIRST goes
MAX_SUBJECT = 60
CELL_PADDING = 2  # DataTable pads each cell by one column on either side

SORT_LABELS = {
    "age": "age",
    "sender": "sender",
    "subject": "subject",
    "intent": "intent",
    "confidence": "confidence",
    "signature": "bucket",
    "state": "state",
    "due": "due",
    "priority": "priority",
    "owner": "owner",
}

STATE_STYLES = {
    "drafted": "green",
    "needs_triage": "yellow",
    "stale": "magenta",
    "failed": "red",
}


def age(at: datetime, now: datetime) -> str:
    """Readable age in at most four characters: 45s, 12m, 3h05, 14d."""
    return span(max(0, int((now - at).total_seconds())))


def fit_columns(width: int) -> list[tuple[str, str, int]]:
    """The columns for a table `width` cells wide: drop the least useful, size the subject."""
    columns = list(COLUMNS)
    room = width - 2  # the vertical scrollbar

    def used(cols: list[tuple[str, str, int]]) -> int:
        return sum(w + CELL_PADDING for key, _, w in cols if key != "subject") + CELL_PADDING

    for key in DROP_FIRST:
        if used(columns) + ROOMY_SUBJECT <= room:
            break
        columns = [c for c in columns if c[0] != key]
    for shrinking, floor in SHRINK:  # still too wide: these give way, to readable widths
        overflow = used(columns) + MIN_SUBJECT - room
        if overflow <= 0:
            break
        columns = [
            (k, label, max(floor, w - overflow) if k == shrinking else w) for k, label, w in columns
        ]
    subject = max(MIN_SUBJECT, min(MAX_SUBJECT, room - used(columns)))
    return [(k, label, subject if k == "subject" else w) for k, label, w in columns]


def intent_cell(row: QueueRow, width: int = 23) -> Text:
    """`access_permissions 0.99`; in a narrow column the name is cut, not the confidence."""
    conf = "" if row.confidence is None else f" {row.confidence:.2f}"
    return safe_line(row.intent or "?", limit=max(4, width - len(conf))) + Text(conf)


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

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.columns_shown: list[tuple[str, str, int]] = []
        self.widths: dict[str, int] = {}
        self._last: tuple[list[QueueRow], dict[str, Any]] | None = None

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self._fit(self.size.width or 120)

    def on_resize(self, event: events.Resize) -> None:
        if self._fit(event.size.width) and self._last is not None:
            rows, kwargs = self._last
            self.show(rows, **kwargs)

    def _fit(self, width: int) -> bool:
        """Lay the columns out for `width`; True when they changed."""
        wanted = fit_columns(width)
        if wanted == self.columns_shown:
            return False
        self.clear(columns=True)
        for key, label, size in wanted:
            self.add_column(Text(label), key=key, width=size)
        self.columns_shown = wanted
        self.widths = {key: size for key, _, size in wanted}
        return True

    def show(
        self,
        rows: Iterable[QueueRow],
        *,
        tagged: set[int],
        now: datetime,
        holder_of: Callable[[QueueRow], str],
        is_new: Callable[[QueueRow], bool] = lambda _row: False,
    ) -> None:
        rows = list(rows)
        self._last = (
            rows,
            {"tagged": tagged, "now": now, "holder_of": holder_of, "is_new": is_new},
        )
        keep = self.current_draft_id()
        keep_row = self.cursor_row
        self.clear()
        keys = [key for key, _, _ in self.columns_shown]
        for row in rows:
            cells = self._cells(row, tagged, now, holder_of(row), is_new(row))
            self.add_row(*(cells[k] for k in keys), key=str(row.draft_id))
        if self.row_count:
            target = keep_row
            if keep is not None and str(keep) in self.rows:
                target = self.get_row_index(str(keep))
            self.move_cursor(row=min(target, self.row_count - 1), animate=False)

    def _cells(
        self, row: QueueRow, tagged: set[int], now: datetime, holder: str, new: bool
    ) -> dict[str, Text]:
        return {
            "tag": Text("●", style="bold cyan") if row.draft_id in tagged else Text(" "),
            "new": Text("new", style="bold green") if new else Text(""),
            "flags": flags_cell(row),
            "age": Text(age(row.written_at or row.received_at, now)),
            "sender": safe_line(row.sender, limit=60),
            "subject": safe_line(row.subject, limit=120),
            "intent": intent_cell(row, self.widths.get("intent", 23)),
            "due": due_text(row.reply_due, now),
            # A ticket no longer open (the pending, solved and spam views) shows its status.
            "state": Text(row.state, style=STATE_STYLES.get(row.state, ""))
            if row.status == "open"
            else status_text(row.status),
            "priority": priority_text(row.priority),
            "owner": owner_text(row.owner, row.team),
            "holder": safe_line(holder, style="bold red" if holder else "", limit=30),
            "bucket": safe_line(row.signature or "", limit=40),
        }

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
