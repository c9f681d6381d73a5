"""A mail loop is cut off: a relay whose recipient auto-replies to everything we send.

The auto-replies lie (no Auto-Submitted, no vendor headers, ordinary subjects) and the
rep on duty releases every draft the moment it appears — the worst case. The rate
limits in screening must still bound what we send.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable, Iterator

import pytest
from freezegun import freeze_time
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from gateway.config import Config
from gateway.ingest import ingest
from gateway.pipeline import AnalysisRunner
from gateway.runner import run_until_idle
from gateway.sender import SenderRunner
from storage.models import Draft, DraftState, Message, MessageState
from tests.gateway.test_sender import SinkHandler, rep_releases, running_sink, sender_config

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
