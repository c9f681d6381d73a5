"""The mail's own time: the Date header when believable, else the delivery time, and why."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from gateway.config import Config
from gateway.conversation.clock import written_at
from gateway.conversation.pipeline import AnalysisRunner
from gateway.inbound.ingest import ingest
from gateway.inbound.parse import parse_message
from gateway.runner import run_until_idle
from storage.db import init_db, make_engine, sqlite_url
from storage.models import Message, utcnow
from storage.review import QueueFilter, page_queue

ARRIVED = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def mail(date: str | None, *, received: str | None = None, subject: str = "Help") -> bytes:
    msg = EmailMessage()
    msg["From"] = "Dana <dana@shop.example>"
    msg["To"] = "support@example.com"
    msg["Subject"] = subject
    if received:
        msg["Received"] = received
    if date is not None:
        msg["Date"] = date
    msg.set_content("Our login page returns 502 since this morning.")
    return msg.as_bytes()


def when(raw: bytes, source: str, arrived: datetime = ARRIVED) -> tuple[datetime, str | None]:
    return written_at(parse_message(raw), arrived, source=source)


def test_a_believable_date_is_the_mails_time_whatever_its_zone() -> None:
    date = "Mon, 23 Nov 2026 03:50:00 -0500"  # 08:50 UTC, ten minutes before arrival
    assert when(mail(date), "smtp:127.0.0.1") == (datetime(2026, 11, 23, 8, 50, tzinfo=UTC), None)


def test_missing_unreadable_future_and_ancient_dates_fall_back_with_a_reason() -> None:
    at, note = when(mail(None), "smtp:x")
    assert at == ARRIVED and note is not None and "no Date" in note
    unreadable = mail(None).replace(b"Subject:", b"Date: the day before yesterday\nSubject:")
    at, note = when(unreadable, "smtp:x")
    assert at == ARRIVED and note is not None and "unreadable" in note
    at, note = when(mail(format_datetime(ARRIVED + timedelta(hours=5))), "smtp:x")
    assert at == ARRIVED and note is not None and "5.0 h after" in note
    at, note = when(mail("Thu, 01 Jan 1970 00:00:00 +0000"), "smtp:x")
    assert at == ARRIVED and note is not None and "before delivery" in note


def test_small_clock_skew_is_believed() -> None:
    ahead = ARRIVED + timedelta(minutes=10)
    assert when(mail(format_datetime(ahead)), "smtp:x") == (ahead, None)


def test_smtp_mail_older_than_a_queue_lifetime_is_not_believed_but_imported_history_is() -> None:
    old = ARRIVED - timedelta(days=30)
    at, note = when(mail(format_datetime(old)), "smtp:x")
    assert at == ARRIVED and note is not None and "30 days before" in note
    # A file or a mailbox without a delivery stamp holds history: a month ago is fine.
    assert when(mail(format_datetime(old)), "file") == (old, None)


def test_imap_mail_is_timed_against_the_servers_delivery_stamp() -> None:
    delivered = ARRIVED - timedelta(days=20)
    stamp = f"from mx by imap.example; {format_datetime(delivered)}"
    written = delivered - timedelta(minutes=3)
    assert when(mail(format_datetime(written), received=stamp), "imap:support") == (written, None)
    # A Date far from that delivery is not believed; the delivery stamp is used instead.
    at, note = when(
        mail(format_datetime(delivered - timedelta(days=60)), received=stamp), "imap:support"
    )
    assert at == delivered and note is not None


def test_imported_week_keeps_its_own_times_in_the_queue(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    """A week of history imported in one minute: the queue shows and sorts it by Date."""
    now = utcnow()
    days = [6, 2, 4]
    for n, ago in enumerate(days):
        raw = mail(format_datetime(now - timedelta(days=ago)), subject=f"Issue {n}")
        ingest(engine, raw, source="file")
    run_until_idle([AnalysisRunner(make_config(), engine)])
    with Session(engine) as session:
        rows = page_queue(session=session, flt=QueueFilter(sort="age"))
        messages = session.exec(select(Message)).all()
    assert [r.subject for r in rows] == ["Issue 0", "Issue 2", "Issue 1"]
    for row in rows:
        assert row.written_at is not None and row.received_at - row.written_at > timedelta(days=1)
    assert all(m.time_note is None for m in messages)


def test_an_old_database_gains_the_column_with_arrival_as_the_time(tmp_path: object) -> None:
    path = f"{tmp_path}/old.db"
    old = make_engine(sqlite_url(path))
    init_db(old)
    with old.begin() as conn:
        conn.execute(text("DROP INDEX IF EXISTS ix_message_written_at"))
        conn.execute(text("ALTER TABLE message DROP COLUMN written_at"))
        conn.execute(text("ALTER TABLE message DROP COLUMN time_note"))
    ingest_raw = mail(format_datetime(utcnow()))
    with old.begin() as conn:
        conn.execute(text("INSERT INTO rawmessage (sha256, size, data) VALUES ('a', 1, x'00');"))
        conn.execute(
            text(
                "INSERT INTO message (dedupe_key, sha256, size, direction, source, envelope_to,"
                ' to_addrs, "references", received_at, state, attempts)'
                " VALUES ('sha:a', 'a', 1, 'inbound', 'smtp', '[]', '[]', '[]',"
                " '2026-11-01 10:00:00', 'received', 0)"
            )
        )
    old.dispose()
    upgraded = make_engine(sqlite_url(path))
    init_db(upgraded)
    init_db(upgraded)  # a second start changes nothing
    with Session(upgraded) as session:
        message = session.exec(select(Message)).one()
    assert message.written_at == datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    assert ingest(upgraded, ingest_raw, source="test").duplicate is False
