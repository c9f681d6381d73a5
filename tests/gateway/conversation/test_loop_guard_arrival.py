"""The loop guard counts what arrived, not what the mail claims, and hears the envelope.

A flood that dates its mails an hour apart still arrives within one hour; mail sent with
the null reverse path (`MAIL FROM:<>`) is a machine's, whatever its From says. Real mail
bytes through ingest and the analysis runner on a temp SQLite.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from freezegun import freeze_time
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from gateway.config import Config
from gateway.conversation.pipeline import AnalysisRunner
from gateway.inbound.ingest import ingest
from gateway.inbound.parse import parse_message
from gateway.runner import run_until_idle
from storage.models import Draft, Message, MessageState

ARRIVAL = datetime(2026, 11, 26, 10, 0, 5, tzinfo=UTC)
FLOOD = 100
LIMIT = 20


def flood_mail(n: int, date: datetime, received: str = "") -> bytes:
    return (
        f"{received}From: Mallory <mallory@customer.example>\r\nTo: support@example.com\r\n"
        f"Subject: Job {n} failed\r\nMessage-ID: <flood{n}@customer.example>\r\n"
        f"Date: {format_datetime(date)}\r\n\r\nJob {n} failed with exit code 2.\r\n"
    ).encode()


def received(by: str, at: datetime) -> str:
    return f"Received: from relay.example ({by}) by {by}; {format_datetime(at)}\r\n"


def run_all(engine: Engine, config: Config, mails: list[bytes], *, source: str) -> list[Message]:
    # Load the models before the clock is frozen: their imports do not survive freezegun.
    AnalysisRunner(config, engine).ctx.analyse(parse_message(mails[0]))
    with freeze_time(ARRIVAL, tick=True):
        pks = [
            ingest(engine, raw, source=source, envelope_from="mallory@customer.example").message_pk
            for raw in mails
        ]
        run_until_idle([AnalysisRunner(config, engine)])
    with Session(engine) as session:
        return [m for pk in pks if (m := session.get(Message, pk)) is not None]


def limited(make_config: Callable[..., Config]) -> Config:
    return make_config(screen={"max_per_sender_per_hour": LIMIT, "max_per_thread_per_hour": 1000})


def test_dates_an_hour_apart_do_not_spread_a_flood(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    mails = [flood_mail(n, ARRIVAL - timedelta(hours=n + 1)) for n in range(FLOOD)]
    messages = run_all(engine, limited(make_config), mails, source="smtp:203.0.113.9")
    states = [m.state for m in messages]
    assert states == [MessageState.DRAFTED] * LIMIT + [MessageState.SUPPRESSED] * (FLOOD - LIMIT)
    reason = messages[-1].suppression_reason or ""
    assert reason.startswith("loop: ") and "2026-11-26 10:00 UTC" in reason
    with Session(engine) as session:
        assert len(session.exec(select(Draft)).all()) == LIMIT


def test_imap_flood_with_forged_received_lines_is_counted_at_delivery(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    # The sender may write Received lines too, but only below the mailbox server's own.
    mails = [
        flood_mail(
            n,
            ARRIVAL - timedelta(hours=n + 1),
            received("imap.example.com", ARRIVAL - timedelta(minutes=5))
            + received("mx.evil.test", ARRIVAL - timedelta(hours=n + 1)),
        )
        for n in range(40)
    ]
    messages = run_all(engine, limited(make_config), mails, source="imap:support")
    states = [m.state for m in messages]
    assert states == [MessageState.DRAFTED] * LIMIT + [MessageState.SUPPRESSED] * (40 - LIMIT)


def test_imap_folder_delivered_over_many_hours_is_not_a_loop(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    """A first sync: the mailbox server delivered these an hour apart; none is a loop."""
    mails = [
        flood_mail(
            n,
            ARRIVAL - timedelta(hours=n + 1),
            received("imap.example.com", ARRIVAL - timedelta(hours=n + 1, minutes=-1)),
        )
        for n in range(30)
    ]
    messages = run_all(engine, limited(make_config), mails, source="imap:support")
    assert [m.state for m in messages] == [MessageState.DRAFTED] * 30


def test_null_reverse_path_is_machine_mail_whatever_the_from(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    raw = (
        b"From: Heidi Customer <heidi@customer.example>\r\nTo: support@example.com\r\n"
        b"Subject: Re: Backups failing\r\nMessage-ID: <oof1@customer.example>\r\n\r\n"
        b"Thank you for your message. I am out of the office until Monday.\r\n"
    )
    # What the SMTP front door passes for `MAIL FROM:<>` (aiosmtpd's value).
    pk = ingest(engine, raw, source="smtp:203.0.113.9", envelope_from="<>").message_pk
    run_until_idle([AnalysisRunner(make_config(), engine)])
    with Session(engine) as session:
        message = session.get(Message, pk)
        assert message is not None
        assert message.envelope_from == "<>"
        assert message.state == MessageState.SUPPRESSED
        assert (message.suppression_reason or "").startswith(
            "system_sender: null envelope sender MAIL FROM:<>"
        )
        assert session.exec(select(Draft).where(Draft.message_pk == pk)).first() is None
    # The same mail from an ordinary reverse path is a customer's.
    other = raw.replace(b"oof1@", b"oof2@")
    pk = ingest(
        engine, other, source="smtp:203.0.113.9", envelope_from="heidi@customer.example"
    ).message_pk
    run_until_idle([AnalysisRunner(make_config(), engine)])
    with Session(engine) as session:
        message = session.get(Message, pk)
        assert message is not None and message.state == MessageState.DRAFTED
