"""Forwarded parts are returned for extraction; reply stripping alone loses them."""

from __future__ import annotations

from nlp.entities.extract import extract_entities
from nlp.entities.forwarded import forwarded_text
from nlp.quotes import strip_reply

GMAIL = """FYI, see below.

---------- Forwarded message ---------
From: Ops Bot <alerts@customer.example.com>
Date: Mon, 3 Feb 2025 at 10:02
Subject: db-main-2 down
To: <team@customer.example.com>

connecting to db-main-2 fails: ECONNREFUSED
"""

APPLE = """Can you look at this?

Begin forwarded message:

> From: Monitoring <monitor@customer.example.com>
> Subject: gateway errors
>
> The gateway returned 503, server api-gw-01 in us-east-1.
"""

OUTLOOK = """Forwarding our developer's report.

-----Original Message-----
From: Dev <dev@customer.example.com>
Sent: Monday, February 3, 2025 10:02 AM
To: Support <support@vendor.example.com>
Subject: failover

We run PostgreSQL 14.7 and see SQLSTATE 57P01 after failover.
"""


def labels(text: str) -> list[tuple[str, str]]:
    return [(e.label, e.text) for e in extract_entities(text)]


def test_gmail_forward_keeps_body_and_subject_without_headers() -> None:
    assert forwarded_text(GMAIL) == "db-main-2 down\n\nconnecting to db-main-2 fails: ECONNREFUSED"
    # The forwarded subject names the host as well as the body does.
    assert labels(forwarded_text(GMAIL)) == [
        ("HOSTNAME", "db-main-2"),
        ("HOSTNAME", "db-main-2"),
        ("ERROR_CODE", "ECONNREFUSED"),
    ]


def test_apple_forward_is_unquoted() -> None:
    assert labels(forwarded_text(APPLE)) == [
        ("HTTP_STATUS", "503"),
        ("HOSTNAME", "api-gw-01"),
        ("CLOUD_REGION", "us-east-1"),
    ]


def test_outlook_original_message_block() -> None:
    assert labels(forwarded_text(OUTLOOK)) == [
        ("VERSION", "14.7"),
        ("ERROR_CODE", "SQLSTATE 57P01"),
    ]


def test_reply_stripping_drops_what_forwarded_text_recovers() -> None:
    for mail in (GMAIL, APPLE, OUTLOOK):
        assert labels(strip_reply(mail)) == []
        assert labels(forwarded_text(mail))


def test_mail_without_forward_gives_nothing() -> None:
    assert forwarded_text("Hi, host db-main-2 is down.\n\nThanks, Jo") == ""


def test_nested_forwards_each_give_their_body() -> None:
    text = (
        "---------- Forwarded message ---------\nFrom: a@example.com\n\nfirst error 500\n"
        "---------- Forwarded message ---------\nFrom: b@example.com\n\nsecond HTTP 502\n"
    )
    assert forwarded_text(text) == "first error 500\n\nsecond HTTP 502"
