"""Screening: every bounce and auto-reply is suppressed with a reason; customers are not.

Uses hand-written fixtures and, when the shared evaluation corpora are present beside
the checkout, every DSN / auto-reply / multipart/report message their INVENTORY.csv lists.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from gateway.config import Config
from gateway.conversation.screen import (
    AUTO_REPLY,
    BOUNCE,
    LIST,
    LOOP,
    OWN_MAIL,
    SYSTEM_SENDER,
    ScreenVerdict,
    bump,
    link_bounce,
    message_time,
    prune_rates,
    screen,
)
from gateway.inbound.parse import parse_message
from storage.db import session_scope
from storage.models import AuditLog, Message, Outbox, OutboxState, RawMessage, SenderRate, utcnow

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "screening"
CORPORA = (
    Path(
        os.environ.get(
            "SUPPORTGATE_EVAL_DATA", Path(__file__).resolve().parents[4] / "shared" / "data"
        )
    )
    / "email"
)


def corpus_machine_mail() -> list[Path]:
    """Corpus messages flagged as DSN/bounce, auto-reply or multipart/report."""
    found: list[Path] = []
    for inventory in sorted(CORPORA.glob("*/INVENTORY.csv")):
        with inventory.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                machine = row["dsn_or_bounce"] == "1" or row["auto_reply"] == "1"
                if machine or "multipart/report" in row["types"]:
                    found.append(inventory.parent / row["file"])
    return found


def run_screen(engine: Engine, config: Config, raw: bytes) -> ScreenVerdict | None:
    parsed = parse_message(raw)
    with session_scope(engine) as session:
        return screen(parsed, session=session, config=config, now=utcnow(), raw=raw)


@pytest.mark.parametrize(
    ("name", "kind", "words"),
    [
        ("dsn_failed.eml", BOUNCE, "550 5.1.1"),
        ("dsn_delayed.eml", BOUNCE, "delayed"),
        ("bounce_exim.eml", BOUNCE, "550 No such user"),
        ("bounce_qmail.eml", BOUNCE, "left@customer.example"),
        ("auto_submitted.eml", AUTO_REPLY, "Auto-Submitted: auto-replied"),
        ("vacation_x_autoreply.eml", AUTO_REPLY, "X-Autoreply"),
        ("exchange_ooo.eml", AUTO_REPLY, "X-MS-Exchange-Inbox-Rules-Loop"),
        ("ooo_subject_only.eml", AUTO_REPLY, "out-of-office subject"),
        ("precedence_bulk.eml", AUTO_REPLY, "Precedence: bulk"),
        ("mailing_list.eml", LIST, "users.lists.example.org"),
        ("noreply_sender.eml", SYSTEM_SENDER, "noreply@monitoring.example"),
    ],
)
def test_fixture_is_suppressed_with_reason(
    engine: Engine, make_config: Callable[..., Config], name: str, kind: str, words: str
) -> None:
    verdict = run_screen(engine, make_config(), (FIXTURES / name).read_bytes())
    assert verdict is not None
    assert verdict.kind == kind
    assert words in verdict.reason
    assert verdict.text.startswith(f"{kind}: ")


@pytest.mark.parametrize(
    "name",
    [
        "customer_mentions_automatic_reply.eml",
        "customer_ordinary.eml",
        "customer_forwards_bounce.eml",
    ],
)
def test_customer_mail_is_not_suppressed(
    engine: Engine, make_config: Callable[..., Config], name: str
) -> None:
    assert run_screen(engine, make_config(), (FIXTURES / name).read_bytes()) is None


def test_corpus_dsns_and_auto_replies_are_all_suppressed(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    paths = corpus_machine_mail()
    if not paths:
        pytest.skip(f"evaluation corpora not found at {CORPORA}")
    config = make_config()
    missed = [
        str(p.relative_to(CORPORA))
        for p in paths
        if run_screen(engine, config, p.read_bytes()) is None
    ]
    assert missed == []
    assert len(paths) >= 10


def test_bounce_carries_original_message_id_and_diagnostic(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    verdict = run_screen(engine, make_config(), (FIXTURES / "dsn_failed.eml").read_bytes())
    assert verdict is not None and verdict.permanent
    assert "sg-bounced0001@example.com" in verdict.original_ids
    assert verdict.recipients == ("gone@customer.example",)
    delayed = run_screen(engine, make_config(), (FIXTURES / "dsn_delayed.eml").read_bytes())
    assert delayed is not None and not delayed.permanent


def _outbox(engine: Engine, message_id: str) -> int:
    with session_scope(engine) as session:
        row = Outbox(
            message_id=message_id,
            to_addrs=["gone@customer.example"],
            subject="Re: x [#7]",
            body="hello",
            released_by="Rita Rep",
            state=OutboxState.SENT,
        )
        session.add(row)
        session.flush()
        return int(row.id or 0)


def _stored(session: Session, raw: bytes) -> Message:
    digest = hashlib.sha256(raw).hexdigest()
    session.add(RawMessage(sha256=digest, size=len(raw), data=raw))
    session.flush()
    message = Message(dedupe_key=f"sha:{digest}", sha256=digest)
    session.add(message)
    session.flush()
    return message


@pytest.mark.parametrize(
    ("name", "original"),
    [
        ("dsn_failed.eml", "<sg-bounced0001@example.com>"),
        ("bounce_exim.eml", "<sg-bounced0002@example.com>"),
        ("bounce_qmail.eml", "<sg-bounced0003@example.com>"),
    ],
)
def test_bounce_marks_its_outbox_row_failed(
    engine: Engine, make_config: Callable[..., Config], name: str, original: str
) -> None:
    outbox_id = _outbox(engine, original)
    other_id = _outbox(engine, "<sg-unrelated@example.com>")
    raw = (FIXTURES / name).read_bytes()
    verdict = run_screen(engine, make_config(), raw)
    assert verdict is not None and verdict.kind == BOUNCE
    with session_scope(engine) as session:
        message = _stored(session, raw)
        assert link_bounce(session, message, verdict, actor="test") == [outbox_id]
    with Session(engine) as session:
        row = session.get(Outbox, outbox_id)
        assert row is not None and row.state == OutboxState.FAILED
        assert row.last_error is not None and row.last_error.startswith("bounced: ")
        other = session.get(Outbox, other_id)
        assert other is not None and other.state == OutboxState.SENT


def _sent(engine: Engine, message_id: str, to: str, ago: timedelta) -> int:
    with session_scope(engine) as session:
        row = Outbox(
            message_id=message_id,
            to_addrs=[to],
            subject="Re: x [#7]",
            body="hello",
            released_by="Rita Rep",
            state=OutboxState.SENT,
            sent_at=utcnow() - ago,
        )
        session.add(row)
        session.flush()
        return int(row.id or 0)


def test_bounce_without_our_message_id_is_matched_by_its_failed_recipient(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    """A qmail bounce that left out the copy names only the address that failed."""
    raw = (FIXTURES / "bounce_qmail.eml").read_bytes()
    raw = raw.split(b"--- Below this line")[0]
    assert b"sg-bounced" not in raw
    # Written just now: only replies sent before a bounce was written can have bounced.
    written = f"Date: {format_datetime(utcnow())}".encode()
    raw = raw.replace(b"Date: Thu, 26 Nov 2026 12:00:00 +0000", written, 1)
    stale = _sent(engine, "<sg-old@example.com>", "left@customer.example", timedelta(days=30))
    older = _sent(
        engine, "<sg-older@example.com>", "Left <LEFT@customer.example>", timedelta(hours=5)
    )
    latest = _sent(engine, "<sg-latest@example.com>", "left@customer.example", timedelta(hours=1))
    other = _sent(engine, "<sg-other@example.com>", "stays@customer.example", timedelta(hours=1))
    verdict = run_screen(engine, make_config(), raw)
    assert verdict is not None and verdict.kind == BOUNCE and verdict.permanent
    assert "left@customer.example" in verdict.recipients
    with session_scope(engine) as session:
        message = _stored(session, raw)
        assert link_bounce(session, message, verdict, actor="t") == [latest]
    with Session(engine) as session:
        states = {i: session.get(Outbox, i).state for i in (stale, older, latest, other)}  # type: ignore[union-attr]
        entry = session.exec(select(AuditLog).where(AuditLog.action == "outbox.bounced")).one()
    assert states == {
        stale: OutboxState.SENT,
        older: OutboxState.SENT,
        latest: OutboxState.FAILED,
        other: OutboxState.SENT,
    }
    assert entry.details["matched_by"] == "recipient"


def test_delay_notice_does_not_fail_the_delivery(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    outbox_id = _outbox(engine, "<sg-slow@example.com>")
    raw = (
        (FIXTURES / "dsn_delayed.eml")
        .read_bytes()
        .replace(b"Subject: Delivery", b"In-Reply-To: <sg-slow@example.com>\nSubject: Delivery")
    )
    verdict = run_screen(engine, make_config(), raw)
    assert verdict is not None
    with session_scope(engine) as session:
        assert link_bounce(session, _stored(session, raw), verdict, actor="t") == [outbox_id]
    with Session(engine) as session:
        row = session.get(Outbox, outbox_id)
        assert row is not None and row.state == OutboxState.SENT


def mail(sender: str, subject: str, *, n: int, extra: str = "") -> bytes:
    return (
        f"From: {sender}\r\nTo: support@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: <m{n}.{sender}>\r\n{extra}\r\nplease help\r\n"
    ).encode()


def test_own_address_and_own_message_id_are_own_mail(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    config = make_config(screen={"extra_own_addresses": ["alerts@example.com"]})
    for sender in ("support@example.com", "alerts@example.com"):
        verdict = run_screen(engine, config, mail(sender, "hi", n=1))
        assert verdict is not None and verdict.kind == OWN_MAIL
    _outbox(engine, "<sg-echo@example.com>")
    echo = b"From: someone@relay.example\r\nMessage-ID: <sg-echo@example.com>\r\n\r\nx\r\n"
    verdict = run_screen(engine, config, echo)
    assert verdict is not None and verdict.kind == OWN_MAIL
    assert "sg-echo@example.com" in verdict.reason


def test_sender_rate_limit_stops_a_loop_whose_headers_lie(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    config = make_config(screen={"max_per_sender_per_hour": 5, "max_per_thread_per_hour": 100})
    verdicts = [
        run_screen(engine, config, mail("bot@customer.example", f"ticket {i}", n=i))
        for i in range(8)
    ]
    assert verdicts[:5] == [None] * 5
    for verdict in verdicts[5:]:
        assert verdict is not None and verdict.kind == LOOP
        assert "bot@customer.example" in verdict.reason and "limit 5" in verdict.reason
    # Another sender is unaffected.
    assert run_screen(engine, config, mail("ada@customer.example", "hi", n=99)) is None


def test_thread_rate_limit_counts_across_senders(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    config = make_config(screen={"max_per_sender_per_hour": 100, "max_per_thread_per_hour": 3})
    refs = "References: <root@customer.example>\r\n"
    verdicts = [
        run_screen(engine, config, mail(f"u{i}@customer.example", "Re: x", n=i, extra=refs))
        for i in range(5)
    ]
    assert verdicts[:3] == [None] * 3
    assert all(v is not None and v.kind == LOOP and "thread" in v.reason for v in verdicts[3:])


def test_rate_window_resets_after_an_hour(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    config = make_config(screen={"max_per_sender_per_hour": 1})
    now = utcnow()
    results = []
    for i, at in enumerate((now, now, now + timedelta(hours=1))):
        raw = mail("x@customer.example", f"s{i}", n=i)
        with session_scope(engine) as session:
            results.append(screen(parse_message(raw), session=session, config=config, now=at))
    assert results[0] is None
    assert results[1] is not None and results[1].kind == LOOP
    assert results[2] is None


def test_keys_longer_than_the_column_count_in_one_row(engine: Engine) -> None:
    at = utcnow()
    with session_scope(engine) as session:
        assert [bump(session, "k" * 1200, at) for _ in range(3)] == [1, 2, 3]
    with Session(engine) as session:
        [row] = session.exec(select(SenderRate)).all()
        assert row.key == "k" * 998 and row.count == 3


def test_thread_with_a_very_long_root_reference_is_counted_not_shunted(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    config = make_config(screen={"max_per_thread_per_hour": 2})
    refs = f"References: <{'r' * 1100}@customer.example>\r\n"
    verdicts = [
        run_screen(engine, config, mail(f"u{i}@customer.example", "Re: x", n=i, extra=refs))
        for i in range(3)
    ]
    assert verdicts[:2] == [None, None]
    assert verdicts[2] is not None and verdicts[2].kind == LOOP


def dated(raw: bytes, date: datetime) -> bytes:
    return raw.replace(b"\r\n\r\n", f"\r\nDate: {format_datetime(date)}\r\n\r\n".encode(), 1)


ARRIVED = datetime(2026, 11, 26, 10, 20, tzinfo=UTC)


def stamped(raw: bytes, at: datetime) -> bytes:
    """The mailbox server's Received header on top, as IMAP-fetched mail carries it."""
    line = f"Received: from mx.example by imap.example.com; {format_datetime(at)}\r\n"
    return line.encode() + raw


@pytest.mark.parametrize(
    "date",
    [ARRIVED - timedelta(days=3), ARRIVED - timedelta(minutes=5), ARRIVED + timedelta(hours=2)],
)
def test_a_message_counts_at_its_arrival_whatever_its_date(date: datetime) -> None:
    """A sender writes any Date it likes; the loop guard counts when we received it."""
    parsed = parse_message(dated(mail("a@customer.example", "s", n=1), date))
    assert message_time(parsed, ARRIVED) == ARRIVED
    assert message_time(parsed, ARRIVED, source="smtp:203.0.113.9") == ARRIVED


@pytest.mark.parametrize(
    ("delivered", "counts_at"),
    [
        (ARRIVED - timedelta(days=6, hours=23), ARRIVED - timedelta(days=6, hours=23)),
        (ARRIVED + timedelta(minutes=14), ARRIVED + timedelta(minutes=14)),
        (ARRIVED - timedelta(days=7, hours=1), ARRIVED),  # too old to believe
        (ARRIVED + timedelta(minutes=16), ARRIVED),  # from the future
    ],
)
def test_imap_mail_counts_at_its_mailbox_delivery_when_plausible(
    delivered: datetime, counts_at: datetime
) -> None:
    parsed = parse_message(stamped(mail("a@customer.example", "s", n=1), delivered))
    assert message_time(parsed, ARRIVED, source="imap:support") == counts_at
    assert message_time(parsed, ARRIVED, source="smtp:203.0.113.9") == ARRIVED


def test_window_is_the_utc_hour_of_the_arrival(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    config = make_config(screen={"max_per_sender_per_hour": 1})
    # 10:45 +05:30 is 05:15 UTC: the same UTC hour as 05:50 UTC, not the one from 04:30.
    arrivals = [
        datetime(2026, 11, 26, 10, 45, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2026, 11, 26, 5, 50, tzinfo=UTC),
    ]
    verdicts = []
    for i, at in enumerate(arrivals):
        parsed = parse_message(mail("x@customer.example", f"s{i}", n=i))
        with session_scope(engine) as session:
            verdicts.append(screen(parsed, session=session, config=config, now=at, received_at=at))
    assert verdicts[0] is None
    assert verdicts[1] is not None and verdicts[1].kind == LOOP
    assert "2026-11-26 05:00 UTC" in verdicts[1].reason


def test_backlog_counters_outlive_a_prune(engine: Engine) -> None:
    now = utcnow()
    with session_scope(engine) as session:
        bump(session, "sender:old@customer.example", now - timedelta(days=6, hours=20))
        bump(session, "sender:older@customer.example", now - timedelta(days=9))
    with session_scope(engine) as session:
        assert prune_rates(session, now=now) == 1
    with Session(engine) as session:
        assert [r.key for r in session.exec(select(SenderRate)).all()] == [
            "sender:old@customer.example"
        ]
