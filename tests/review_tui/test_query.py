"""The one-line filter and pattern language, and the safe rendering of customer text."""

from __future__ import annotations

import subprocess
import sys

import pytest

from review_tui.query import describe_filter, parse_filter, parse_pattern
from review_tui.widgets.safe_text import clean, highlighted, one_line
from storage.review import QueueFilter


def test_filter_terms_combine() -> None:
    flt = parse_filter("state:stale,drafted intent:billing conf:0.5-0.9 mailbox:eu", QueueFilter())
    assert flt.states == ("stale", "drafted")
    assert flt.intents == ("billing",)
    assert (flt.min_confidence, flt.max_confidence) == (0.5, 0.9)
    assert flt.mailbox == "eu"
    assert parse_filter(describe_filter(flt), QueueFilter()) == flt


def test_filter_open_ranges_and_reset() -> None:
    assert parse_filter("conf:0.8-", QueueFilter()).min_confidence == 0.8
    assert parse_filter("conf:0.8-", QueueFilter()).max_confidence is None
    assert parse_filter("conf:-0.4", QueueFilter()).max_confidence == 0.4
    narrowed = parse_filter("intent:billing", QueueFilter(search="acme", sort="intent"))
    reset = parse_filter("  ", narrowed)
    assert reset.intents == () and reset.states == QueueFilter().states
    assert (reset.search, reset.sort) == ("acme", "intent")  # search and sort survive


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("conf:2", "between 0 and 1"),
        ("conf:0.9-0.1", "lower bound is above"),
        ("conf:high", "write a range"),
        ("state:sent", "unknown state 'sent'"),
        ("state:shunted", "press s to see shunted"),
        ("colour:red", "unknown filter 'colour'"),
        ("billing", "write key:value"),
    ],
)
def test_bad_filters_say_why(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_filter(text, QueueFilter())


def test_patterns() -> None:
    assert parse_pattern("intent:outage_report") == ("intent", "outage_report")
    assert parse_pattern(" domain:@kanoo.ng ") == ("sender_domain", "@kanoo.ng")
    assert parse_pattern("sig:abc123") == ("signature", "abc123")
    assert parse_pattern("entity:db-1.example.com") == ("entity", "db-1.example.com")
    with pytest.raises(ValueError, match="field one of"):
        parse_pattern("colour:red")
    with pytest.raises(ValueError, match="needs a value"):
        parse_pattern("intent: ")


def test_clean_makes_controls_visible_and_keeps_length() -> None:
    raw = "a\x1b[2Jb\x07c\rd\x9be\x7f\tf\ng"
    out = clean(raw)
    assert out == "a␛[2Jb␇c␍d\ufffde\u2421\tf\ng"
    assert len(out) == len(raw)
    assert one_line("x\ny\tz") == "x y z"
    assert one_line("abcdef", limit=4) == "abc…"


def test_highlight_marks_entities_and_never_parses_markup() -> None:
    body = "[bold]db-1[/bold] at \x1b[31m10.0.0.1"
    entities = [
        {"label": "HOSTNAME", "start": 6, "end": 10, "text": "db-1"},
        {"label": "IP", "start": 26, "end": 34, "text": "10.0.0.1"},
        {"label": "URL", "start": 0, "end": 999, "text": "not in the body is skipped"},
        {"label": "EMAIL", "start": 0, "end": 3, "source": "app.log"},
    ]
    text = highlighted(body, entities)
    assert text.plain == "[bold]db-1‹HOSTNAME›[/bold] at ␛[31m10.0.0.1‹IP›"
    styled = {text.plain[s.start : s.end] for s in text.spans if "on" in str(s.style)}
    assert styled == {"db-1", "10.0.0.1"}


def test_review_ui_does_not_import_the_gateway() -> None:
    code = (
        "import sys, review_tui.app, review_tui\n"
        "bad = [m for m in sys.modules if m == 'gateway' or m.startswith('gateway.')]\n"
        "bad += [m for m in ('aiosmtpd', 'imapclient', 'spacy') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == ""


def test_highlight_finds_entities_whose_offsets_point_elsewhere() -> None:
    body = "> quoted line\nreal text about db-9 here"
    # offsets into the quote-stripped reply ("real text about db-9 here"), not the body
    text = highlighted(body, [{"label": "HOSTNAME", "start": 16, "end": 20, "text": "db-9"}])
    assert text.plain == "> quoted line\nreal text about db-9‹HOSTNAME› here"
