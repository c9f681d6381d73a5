"""Mixed delivery reports whose per-recipient blocks leave out Action: (common in the
wild; a 5.x.x Status then means failed, 4.x.x delayed) fail only the replies to the
addresses that failed for good, and never lose the failure."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from email.utils import format_datetime

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from gateway.config import Config
from gateway.conversation.screen import BOUNCE, link_bounce
from storage.db import session_scope
from storage.models import Outbox, OutboxState, utcnow
from tests.gateway.conversation.test_screen import _sent, _stored, run_screen


def _mixed_dsn(gone_action: str, slow_action: str) -> bytes:
    """One report, two recipients: one failed for good, one only delayed; no copy."""
    gone = f"Action: {gone_action}\r\n" if gone_action else ""
    slow = f"Action: {slow_action}\r\n" if slow_action else ""
    return (
        "From: Mail Delivery System <MAILER-DAEMON@relay.example.com>\r\n"
        "To: support@example.com\r\nSubject: Delivery Status Notification\r\n"
        f"Date: {format_datetime(utcnow())}\r\n"
        f"Message-ID: <dsn-{gone_action or 'none'}-{slow_action or 'none'}@relay.example.com>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nSome recipients could not be reached.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; relay.example.com\r\n\r\n"
        f"Final-Recipient: rfc822; gone@customer.example\r\n{gone}"
        "Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n"
        f"Final-Recipient: rfc822; slow@customer.example\r\n{slow}"
        "Status: 4.4.1\r\nDiagnostic-Code: smtp; 421 4.4.1 try again later\r\n\r\n"
        "--b--\r\n"
    ).encode()


@pytest.mark.parametrize(
    ("gone_action", "slow_action"),
    [("failed", "delayed"), ("", ""), ("", "delayed"), ("failed", "")],
)
def test_mixed_report_without_actions_fails_only_the_address_that_failed(
    engine: Engine, make_config: Callable[..., Config], gone_action: str, slow_action: str
) -> None:
    gone = _sent(engine, "<sg-gone@example.com>", "gone@customer.example", timedelta(hours=2))
    slow = _sent(engine, "<sg-slow@example.com>", "slow@customer.example", timedelta(hours=2))
    raw = _mixed_dsn(gone_action, slow_action)
    verdict = run_screen(engine, make_config(), raw)
    assert verdict is not None and verdict.kind == BOUNCE and verdict.permanent
    assert verdict.original_ids == ()
    assert "gone@customer.example" in verdict.recipients
    if slow_action:
        assert "slow@customer.example" in verdict.recipients
    assert verdict.failed_recipients == ("gone@customer.example",)
    with session_scope(engine) as session:
        assert link_bounce(session, _stored(session, raw), verdict, actor="t") == [gone]
    with Session(engine) as session:
        states = {i: session.get(Outbox, i).state for i in (gone, slow)}  # type: ignore[union-attr]
    assert states == {gone: OutboxState.FAILED, slow: OutboxState.SENT}
