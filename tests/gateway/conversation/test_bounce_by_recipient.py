"""A bounce matched by its failed recipient must only ever fail the reply it reports on.

The recipient match is a guess (the bounce names no Message-ID of ours), so it must not
be made when the bounce says otherwise: when it was written before the reply was sent
(an old bounce stored late, by a backfill or after an outage), when it quotes the
Message-ID of some other message, or when the latest reply to that address has
already failed or is waiting for a retry.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from gateway.config import Config
from gateway.conversation.screen import BOUNCE, ScreenVerdict, link_bounce, screen
from gateway.inbound.parse import parse_message
from storage.db import session_scope
from storage.models import Message, Outbox, OutboxState, RawMessage, utcnow

QMAIL = Path(__file__).resolve().parents[2] / "fixtures" / "screening" / "bounce_qmail.eml"
ADDRESS = "left@customer.example"


def _bounce(*, written_ago: timedelta, with_copy: bool = False) -> bytes:
    """The qmail bounce for ADDRESS, dated `written_ago` before now."""
    raw = QMAIL.read_bytes()
    if not with_copy:
        raw = raw.split(b"--- Below this line")[0]
    date = format_datetime(utcnow() - written_ago).encode("ascii")
    return re.sub(rb"(?m)^Date: .*$", b"Date: " + date, raw, count=1)


def _verdict(engine: Engine, config: Config, raw: bytes) -> ScreenVerdict:
    with session_scope(engine) as session:
        verdict = screen(parse_message(raw), session=session, config=config, now=utcnow(), raw=raw)
    assert verdict is not None and verdict.kind == BOUNCE and verdict.permanent
    assert ADDRESS in verdict.recipients
    return verdict


def _reply(engine: Engine, name: str, ago: timedelta, state: str = OutboxState.SENT) -> int:
    with session_scope(engine) as session:
        row = Outbox(
            message_id=f"<sg-{name}@example.com>",
            to_addrs=[ADDRESS],
            subject="Re: x [#7]",
            body="hello",
            released_by="Rita Rep",
            state=state,
            sent_at=utcnow() - ago,
        )
        session.add(row)
        session.flush()
        return int(row.id or 0)


def _link(engine: Engine, raw: bytes, verdict: ScreenVerdict) -> list[int]:
    """Store the bounce as just arrived, then link it."""
    with session_scope(engine) as session:
        digest = hashlib.sha256(raw).hexdigest()
        session.add(RawMessage(sha256=digest, size=len(raw), data=raw))
        session.flush()
        message = Message(dedupe_key=f"sha:{digest}", sha256=digest, received_at=utcnow())
        session.add(message)
        session.flush()
        return link_bounce(session, message, verdict, actor="t")


def _states(engine: Engine, *ids: int) -> list[str]:
    with Session(engine) as session:
        return [session.get(Outbox, i).state for i in ids]  # type: ignore[union-attr]


def test_an_old_bounce_stored_late_does_not_fail_a_recent_reply(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    """A backfill brings in a bounce written two months ago: this week's reply went out."""
    recent = _reply(engine, "recent", timedelta(hours=2))
    raw = _bounce(written_ago=timedelta(days=60))
    verdict = _verdict(engine, make_config(), raw)
    assert _link(engine, raw, verdict) == []
    assert _states(engine, recent) == [OutboxState.SENT]


def test_a_bounce_is_matched_to_the_latest_reply_sent_before_it_was_written(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    before = _reply(engine, "before", timedelta(hours=6))
    after = _reply(engine, "after", timedelta(hours=1))
    raw = _bounce(written_ago=timedelta(hours=3))
    verdict = _verdict(engine, make_config(), raw)
    assert _link(engine, raw, verdict) == [before]
    assert _states(engine, before, after) == [OutboxState.FAILED, OutboxState.SENT]


def test_a_bounce_quoting_another_message_id_is_not_matched_by_recipient(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    """The copy names the message that failed, and it is not one of our replies."""
    ours = _reply(engine, "ours", timedelta(hours=1))
    raw = _bounce(written_ago=timedelta(minutes=1), with_copy=True)
    verdict = _verdict(engine, make_config(), raw)
    assert "sg-bounced0003@example.com" in verdict.original_ids
    assert _link(engine, raw, verdict) == []
    assert _states(engine, ours) == [OutboxState.SENT]


def test_a_latest_reply_that_already_failed_does_not_pass_the_bounce_to_an_older_one(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    """A second bounce for the same failure (or one while a retry waits) is about the
    latest reply, never about an older one that was delivered."""
    older = _reply(engine, "older", timedelta(hours=6))
    failed = _reply(engine, "failed", timedelta(hours=2), OutboxState.FAILED)
    raw = _bounce(written_ago=timedelta(minutes=1))
    assert _link(engine, raw, _verdict(engine, make_config(), raw)) == [failed]
    assert _states(engine, older, failed) == [OutboxState.SENT, OutboxState.FAILED]


def test_a_latest_reply_waiting_for_its_retry_is_not_failed_by_recipient(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    older = _reply(engine, "older", timedelta(hours=6))
    retried = _reply(engine, "retried", timedelta(hours=2), OutboxState.PENDING)
    raw = _bounce(written_ago=timedelta(minutes=1))
    assert _link(engine, raw, _verdict(engine, make_config(), raw)) == [retried]
    assert _states(engine, older, retried) == [OutboxState.SENT, OutboxState.PENDING]
