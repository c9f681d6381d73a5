"""Reply stripping on hand-written replies from common clients and languages."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlp.quotes import strip_quotes, strip_reply, strip_signature
from nlp.text import html_to_text

REPLIES = Path(__file__).resolve().parents[1] / "fixtures" / "replies"
CASES = sorted(p.stem for p in REPLIES.glob("*.txt"))
# Replies whose signature is only the sender's name need the name to find it.
SENDERS = {"gmail": "Priya Raman"}


def norm(text: str) -> str:
    return " ".join(text.split())


def test_every_fixture_has_an_expectation() -> None:
    assert len(CASES) >= 12
    for name in CASES:
        assert (REPLIES / f"{name}.expected").is_file(), name


@pytest.mark.parametrize("name", CASES)
def test_strip_reply_fixture(name: str) -> None:
    text = (REPLIES / f"{name}.txt").read_text("utf-8")
    expected = (REPLIES / f"{name}.expected").read_text("utf-8")
    assert norm(strip_reply(text, sender_name=SENDERS.get(name, ""))) == norm(expected)


def test_reply_that_is_all_quote_returns_the_original() -> None:
    text = "> only quoted\n> lines here\n"
    assert strip_reply(text) == text


def test_attribution_without_following_quote_cuts_the_rest() -> None:
    text = (
        "New problem: 504 again.\n\nOn Mon, Nov 23, 2026 at 1:00 PM Bob <b@x.io> wrote:\nold text\n"
    )
    assert norm(strip_reply(text)) == "New problem: 504 again."


def test_bottom_posted_reply_keeps_text_below_the_quote() -> None:
    text = "On 11/24/2026 10:00 AM, Support wrote:\n> Any news?\nYes, it works now.\n"
    assert strip_quotes(text) == "Yes, it works now."


def test_on_at_line_start_without_wrote_is_kept() -> None:
    text = "On the staging cluster you can run:\n\n  kubectl get pods\n\nThat shows it."
    assert strip_reply(text) == text.strip()


def test_dashes_inside_a_line_are_not_a_signature() -> None:
    text = "The fix -- as discussed -- is deployed.\n\nLet us know."
    assert strip_signature(text) == text


def test_sent_from_sentence_is_not_a_mobile_footer() -> None:
    text = "Here is the log.\n\nSent from my desk, which is easier than my phone."
    assert strip_reply(text) == text


def test_sign_off_followed_by_long_text_is_kept() -> None:
    text = "Thanks,\n" + "\n".join(f"line {i} of a long explanation" for i in range(12))
    assert strip_signature("Intro.\n" + text) == "Intro.\n" + text


def test_crlf_and_long_input_are_handled() -> None:
    body = "Problem line.\r\n" * 5000 + "\r\nOn Mon, Nov 23, 2026, Bob wrote:\r\n> old\r\n"
    result = strip_reply(body)
    assert result.count("Problem line.") == 5000
    assert "old" not in result


def test_garbage_does_not_raise() -> None:
    for text in ("", "\x00\x00", "\x1b[31m>\x1b[0m", "-- ", ">" * 10_000, "On wrote:"):
        assert isinstance(strip_reply(text), str)


def test_header_block_in_any_order_is_history() -> None:
    text = (
        "Works now, thanks.\n\n________________________________\n"
        "Date: Tue, 24 Nov 2026 10:00:00 +0000\nSubject: Re: outage\n"
        "From: support@example.com\nTo: me@customer.example\n\nOld answer text.\n"
    )
    assert strip_reply(text) == "Works now, thanks."


def test_date_name_address_colon_above_a_quote_is_an_attribution() -> None:
    text = 'Still failing.\n\n25.11.2026, 14:41, "Support" <support@example.com>:\n> Old text\n'
    assert strip_reply(text) == "Still failing."


def test_address_colon_without_a_quote_below_is_kept() -> None:
    text = "Please add this user on 25.11.2026 <new.user@customer.example>:\nadmin role"
    assert strip_reply(text) == text


def test_html_reply_blockquote_becomes_a_quote() -> None:
    html = (
        "<html><head><style>p {color: red}</style></head><body>"
        "<div>Disk on db-3 is full again.</div><div><br></div>"
        '<div class="gmail_quote">On Wed, Nov 25, 2026 at 4:12 PM Support &lt;'
        '<a href="mailto:s@example.com">s@example.com</a>&gt; wrote:<br>'
        "<blockquote>Did the cleanup help?<blockquote>older</blockquote></blockquote></div>"
        "</body></html>"
    )
    text = html_to_text(html)
    assert "> Did the cleanup help?" in text and "> > older" in text
    assert "color" not in text
    assert strip_reply(text) == "Disk on db-3 is full again."


def test_broken_html_does_not_raise() -> None:
    for html in ("<div><blockquote>unclosed", "</blockquote></blockquote>x", "<<<>>>", ""):
        assert isinstance(html_to_text(html), str)
