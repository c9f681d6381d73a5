"""The loop guard: per-sender and per-thread hourly counters, the last screening check.

Header checks catch honest auto-responders; a loop between two systems that lie in
every header is caught only by counting. Each message adds one to its sender's counter
and its conversation's counter for one UTC hour; past either limit of `[screen]` the
message is screened out as a possible mail loop.

The counters count each message in the hour it arrived, never the hour its Date header
claims: the Date is written by the sender, and a flood whose mails are dated an hour
apart must not land in a hundred different hours. Arrival is when the message reached a
mail server of ours: the time ingest stored it, or, for mail fetched over IMAP, the
timestamp of its topmost Received header — written by the mailbox's own server on
delivery, above anything the sender wrote — when it lies in the week before the fetch
(15 minutes of clock skew allowed). So an IMAP folder synced for the first time is still
counted hour by hour, as it was delivered; a backlog after our own outage counts at
arrival. Counters are upserts (one statement), so runners counting the same sender at
once both succeed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from gateway.config import Config
from gateway.conversation.verdict import DATE_MAX_AGE, DATE_MAX_SKEW, LOOP, ScreenVerdict
from nlp.types import ParsedMessage
from storage.models import SenderRate

_PREFIX = re.compile(r"^\s*((re|aw|sv|fwd?|wg)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)


def thread_key(parsed: ParsedMessage) -> str:
    """A key that is equal for every message of one conversation, before threading."""
    if parsed.references:
        return f"thread:{parsed.references[0]}"
    if parsed.in_reply_to:
        return f"thread:{parsed.in_reply_to}"
    subject = " ".join(_PREFIX.sub("", parsed.subject or "").lower().split())
    return f"thread:{parsed.from_addr.lower()}:{subject}"[:998]


def message_time(parsed: ParsedMessage, arrived: datetime, *, source: str = "") -> datetime:
    """The time a message counts in: its arrival, never its Date header.

    For mail fetched over IMAP (`source` "imap:..."), `arrived` is the fetch; the
    mailbox server's delivery time (its topmost Received header) counts when plausible.
    """
    if not source.startswith("imap"):
        return arrived
    stamp = (parsed.header("Received") or "").rpartition(";")[2].strip()
    try:
        delivered = parsedate_to_datetime(stamp) if stamp else None
    except (TypeError, ValueError, IndexError):
        delivered = None
    if delivered is None or delivered.tzinfo is None:
        return arrived
    ok = arrived - DATE_MAX_AGE <= delivered <= arrived + DATE_MAX_SKEW
    return delivered if ok else arrived


def bump(session: Session, key: str, at: datetime) -> int:
    """Add one to `key`'s counter in the UTC hour of `at` and return the new count."""
    key = key[:998]  # the column's width: look up what is stored
    window = at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    table = SenderRate.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    if dialect not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"loop counters need SQLite or PostgreSQL, not {dialect}")
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(table)
        .values(key=key, window_start=window, count=1)
        .on_conflict_do_update(
            index_elements=[table.c.key, table.c.window_start],
            set_={"count": table.c["count"] + 1},
        )
        .returning(table.c["count"])
    )
    return int(session.execute(stmt).scalar_one())


def check_rate(
    parsed: ParsedMessage,
    *,
    session: Session,
    config: Config,
    now: datetime,
    received_at: datetime | None = None,
    source: str = "",
) -> ScreenVerdict | None:
    """Count this message against its sender and thread; a loop past either limit.

    The hour is that of `message_time`, with `received_at` (else `now`) as the arrival.
    """
    limits = config.screen
    at = message_time(parsed, received_at or now, source=source)
    hour = f"the hour from {at.astimezone(UTC):%Y-%m-%d %H}:00 UTC"
    sender = parsed.from_addr.lower() or "(no sender)"
    per_sender = bump(session, f"sender:{sender}", at)
    per_thread = bump(session, thread_key(parsed), at)
    if per_sender > limits.max_per_sender_per_hour:
        return ScreenVerdict(
            LOOP,
            f"{sender} sent {per_sender} messages in {hour} "
            f"(limit {limits.max_per_sender_per_hour}): possible mail loop",
        )
    if per_thread > limits.max_per_thread_per_hour:
        return ScreenVerdict(
            LOOP,
            f"{per_thread} messages in this thread in {hour} "
            f"(limit {limits.max_per_thread_per_hour}): possible mail loop",
        )
    return None


def prune_rates(
    session: Session, *, now: datetime, keep: timedelta = DATE_MAX_AGE + timedelta(days=1)
) -> int:
    """Delete counters older than `keep`; returns how many went.

    IMAP mail counts in the hour it was delivered, up to `DATE_MAX_AGE` back, so a counter
    is kept that long (and a day more) while a backlog may still add to it.
    """
    old = session.exec(select(SenderRate).where(col(SenderRate.window_start) < now - keep)).all()
    for row in old:
        session.delete(row)
    return len(old)
