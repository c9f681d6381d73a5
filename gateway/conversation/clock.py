"""When a mail was written, as opposed to when it reached us.

Queue age, patterns and incidents must follow the customer's own clock: after a week
of history is imported over IMAP, every message arrives in the same minute, yet the
customers wrote it over seven days. The Date header says when, but it is the sender's
claim, so it is believed only inside a window around a time we trust: for mail that
came through our SMTP front door, the arrival; for mail fetched from a mailbox or read
from a file, the mailbox server's delivery stamp (topmost Received) when it has one.
A missing, unreadable or absurd Date falls back to that time, and the reason is kept
beside it. The loop guard and the rate limits never use this: they count arrivals.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from gateway.conversation.verdict import DATE_MAX_AGE, DATE_MAX_SKEW
from nlp.types import ParsedMessage

# A mailbox or a file can hold years of history; a delivery stamp older than this is
# not believed either (nothing in patterns or queue age looks back further).
HISTORY_MAX_AGE = timedelta(days=400)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _stamp(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return None if when is None else _utc(when)


def delivered_at(parsed: ParsedMessage, arrived: datetime, *, source: str) -> datetime:
    """The time we trust for a message: its arrival, or for mail that sat in a mailbox
    (IMAP, files), the server's delivery stamp when it is plausible."""
    if source.startswith("smtp"):
        return arrived
    received = parsed.header("Received") or ""
    delivered = _stamp(received.rpartition(";")[2]) if ";" in received else None
    if delivered is None:
        return arrived
    if arrived - HISTORY_MAX_AGE <= delivered <= arrived + DATE_MAX_SKEW:
        return delivered
    return arrived


def written_at(
    parsed: ParsedMessage, arrived: datetime, *, source: str
) -> tuple[datetime, str | None]:
    """The mail's own time and, when its Date was not believed, why."""
    arrived = _utc(arrived)
    trusted = delivered_at(parsed, arrived, source=source)
    raw = parsed.header("Date")
    if not raw or not raw.strip():
        return trusted, "no Date header; using the delivery time"
    date = parsed.date if parsed.date is not None else _stamp(raw)
    if date is None:
        return trusted, f"unreadable Date header {raw.strip()[:80]!r}; using the delivery time"
    date = _utc(date)
    if source.startswith("smtp") or trusted != arrived:
        oldest = trusted - DATE_MAX_AGE
    else:
        # A file or a mailbox without a delivery stamp: history, however old it is.
        oldest = trusted - HISTORY_MAX_AGE
    if date > trusted + DATE_MAX_SKEW:
        ahead = date - trusted
        return trusted, f"Date is {_span(ahead)} after delivery; using the delivery time"
    if date < oldest:
        behind = trusted - date
        return trusted, f"Date is {_span(behind)} before delivery; using the delivery time"
    return date, None


def _span(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.0f} days"
