"""A mail loop is cut off: a relay whose recipient auto-replies to everything we send.

The auto-replies lie (no Auto-Submitted, no vendor headers, ordinary subjects) and the
rep on duty releases every draft the moment it appears — the worst case. The rate
limits in screening must still bound what we send.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from freezegun import freeze_time
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from gateway.config import Config
from gateway.conversation.pipeline import AnalysisRunner
from gateway.inbound.ingest import ingest
from gateway.outbound.sender import SenderRunner
from gateway.runner import run_until_idle
from storage.models import Draft, DraftState, Message, MessageState
from tests.support.relay import SinkHandler, rep_releases, running_sink, sender_config

ROUNDS = 30
FIRST = (
    b"From: Bot Owner <owner@customer.example>\r\nTo: support@example.com\r\n"
    b"Subject: Backups failing\r\nMessage-ID: <first@customer.example>\r\n\r\n"
    b"Our nightly backup of db-3 fails.\r\n"
)


@pytest.fixture
def sink() -> Iterator[tuple[SinkHandler, int]]:
    with running_sink() as started:
        yield started


def auto_reply_to(raw: bytes, n: int, *, threaded: bool) -> bytes:
    """A lying auto-reply: no machine headers; threaded or with a fresh subject each time."""
    ours = email.message_from_bytes(raw, policy=email.policy.default)
    headers = ""
    subject = f"Re: {ours['Subject']}"
    if threaded:
        refs = f"{ours.get('References', '')} {ours['Message-ID']}".strip()
        headers = f"In-Reply-To: {ours['Message-ID']}\r\nReferences: {refs}\r\n"
    else:
        subject = f"Thanks for your message no. {n}"
    return (
        f"From: Bot Owner <owner@customer.example>\r\nTo: support@example.com\r\n"
        f"Subject: {subject}\r\nMessage-ID: <auto{n}@customer.example>\r\n{headers}\r\n"
        f"Thank you for your email, we will get back to you (reply {n}).\r\n"
    ).encode()


def open_drafts(engine: Engine) -> list[int]:
    with Session(engine) as session:
        rows = session.exec(
            select(Draft.id).where(
                col(Draft.state).in_([DraftState.DRAFTED, DraftState.NEEDS_TRIAGE])
            )
        ).all()
    return [int(i or 0) for i in rows]


@pytest.mark.parametrize(
    ("threaded", "limit_key", "limit"),
    [(True, "max_per_thread_per_hour", 4), (False, "max_per_sender_per_hour", 6)],
)
def test_auto_replying_sink_cannot_make_us_send_more_than_the_limit(
    engine: Engine,
    make_config: Callable[..., Config],
    sink: tuple[SinkHandler, int],
    threaded: bool,
    limit_key: str,
    limit: int,
) -> None:
    handler, port = sink
    screen_cfg = {"max_per_thread_per_hour": 100, "max_per_sender_per_hour": 100, limit_key: limit}
    config = sender_config(make_config, port, screen=screen_cfg)
    analysis = AnalysisRunner(config, engine)
    sender = SenderRunner(config, engine)
    # A fixed hour, ticking: the whole loop happens inside one rate window.
    with freeze_time("2026-11-26 10:00:00", tick=True, real_asyncio=True):
        ingest(engine, FIRST, source="test")
        for n in range(ROUNDS):
            run_until_idle([analysis])
            drafts = open_drafts(engine)
            if not drafts:
                break
            for draft_id in drafts:
                rep_releases(engine, draft_id, body="We are on it.")
            seen = len(handler.messages)
            run_until_idle([sender])
            for _, _, raw in handler.messages[seen:]:
                ingest(engine, auto_reply_to(raw, n, threaded=threaded), source="test")
        else:
            pytest.fail(f"loop still running after {ROUNDS} rounds")

    # The customer's first mail plus at most `limit` answered auto-replies.
    assert 1 <= len(handler.messages) <= limit + 1
    with Session(engine) as session:
        cut = session.exec(
            select(Message).where(
                Message.state == MessageState.SUPPRESSED, Message.direction == "inbound"
            )
        ).all()
    assert len(cut) == 1
    assert cut[0].suppression_reason is not None
    assert cut[0].suppression_reason.startswith("loop: ")
    assert f"limit {limit}" in cut[0].suppression_reason


ARRIVAL = datetime(2026, 11, 26, 10, 0, 5, tzinfo=UTC)


def backlog_mail(n: int, date: datetime, subject: str) -> bytes:
    """A mail as an IMAP first sync finds it: our mailbox server stamped its delivery
    (a minute after it was written) on top."""
    delivered = format_datetime(date + timedelta(minutes=1))
    return (
        f"Received: from mx.customer.example by imap.example.com; {delivered}\r\n"
        f"From: Bot Owner <owner@customer.example>\r\nTo: support@example.com\r\n"
        f"Subject: {subject}\r\nMessage-ID: <backlog{n}@customer.example>\r\n"
        f"Date: {format_datetime(date)}\r\n\r\nOur nightly backup of db-{n} fails.\r\n"
    ).encode()


def states_after_one_run(engine: Engine, config: Config, mails: list[bytes]) -> list[Message]:
    """Ingest `mails` at ARRIVAL (an IMAP first sync, or the queue after an outage) and
    process them all in one go."""
    with freeze_time(ARRIVAL, tick=True):
        pks = [ingest(engine, raw, source="imap:support").message_pk for raw in mails]
        run_until_idle([AnalysisRunner(config, engine)])
    with Session(engine) as session:
        return [m for pk in pks if (m := session.get(Message, pk)) is not None]


def test_backlog_written_over_many_hours_is_not_a_loop(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    # One sender, one thread, thirty mails written an hour apart over the past days.
    mails = [
        backlog_mail(n, ARRIVAL - timedelta(hours=n + 1), "Backups failing") for n in range(ROUNDS)
    ]
    messages = states_after_one_run(engine, make_config(), mails)
    assert [m.state for m in messages] == [MessageState.DRAFTED] * ROUNDS
    assert all(m.suppression_reason is None for m in messages)


@pytest.mark.parametrize(
    "when",
    [
        # Thirty mails written within one hour of the outage: a loop, however late we see it.
        lambda n: ARRIVAL - timedelta(days=2, minutes=59 - n),
        # Dates that cannot be believed count at arrival: too old, or from the future.
        lambda n: ARRIVAL - timedelta(days=30, hours=n),
        lambda n: ARRIVAL + timedelta(hours=n + 1),
    ],
    ids=["same-hour", "ancient", "future"],
)
def test_mail_counted_in_one_hour_is_still_limited(
    engine: Engine, make_config: Callable[..., Config], when: Callable[[int], datetime]
) -> None:
    config = make_config(screen={"max_per_sender_per_hour": 20, "max_per_thread_per_hour": 100})
    mails = [backlog_mail(n, when(n), f"Job {n} failed") for n in range(ROUNDS)]
    messages = states_after_one_run(engine, config, mails)
    assert [m.state for m in messages] == [MessageState.DRAFTED] * 20 + [
        MessageState.SUPPRESSED
    ] * (ROUNDS - 20)
    for m in messages[20:]:
        assert m.suppression_reason is not None and m.suppression_reason.startswith("loop: ")
        assert "limit 20" in m.suppression_reason


def test_same_hour_backlog_processed_across_hours_is_still_limited(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    """The count follows the mail's hour, not the runner's: a split run changes nothing."""
    config = make_config(screen={"max_per_sender_per_hour": 20, "max_per_thread_per_hour": 100})
    written = ARRIVAL - timedelta(hours=5)
    mails = [backlog_mail(n, written + timedelta(minutes=n), f"Job {n}") for n in range(ROUNDS)]
    pks: list[int] = []
    with freeze_time(ARRIVAL, tick=True) as clock:
        for part in (mails[:15], mails[15:]):
            pks += [ingest(engine, raw, source="imap:support").message_pk for raw in part]
            run_until_idle([AnalysisRunner(config, engine)])
            clock.move_to(ARRIVAL + timedelta(hours=2))
    with Session(engine) as session:
        states = [m.state for pk in pks if (m := session.get(Message, pk)) is not None]
    assert states == [MessageState.DRAFTED] * 20 + [MessageState.SUPPRESSED] * 10
