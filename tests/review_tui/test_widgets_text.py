"""Pure renderers: bidi controls made visible, readable ages, columns that fit the terminal."""

from __future__ import annotations

from datetime import timedelta

import pytest

from review_tui.prefs import QueuePrefs, load_prefs, save_prefs
from review_tui.widgets.queue_table import age, fit_columns
from review_tui.widgets.release_preview import release_lines
from review_tui.widgets.safe_text import BIDI_CONTROLS, clean, highlighted, one_line, safe_line
from storage.review import QueueFilter
from storage.seed import FIXED_NOW

BIDI = [
    *(chr(c) for c in range(0x202A, 0x202F)),
    *(chr(c) for c in range(0x2066, 0x206A)),
    "\u200e",
    "\u200f",
    "\u061c",
]


@pytest.mark.parametrize("ch", BIDI)
def test_every_bidi_control_is_shown_as_an_escape(ch: str) -> None:
    assert ch in BIDI_CONTROLS
    shown = clean(f"invoice{ch}fdp.exe")
    assert shown == f"invoice<U+{ord(ch):04X}>fdp.exe"
    assert ch not in one_line(f"a{ch}b") and ch not in safe_line(f"a{ch}b").plain


def test_bidi_escapes_and_control_pictures_combine() -> None:
    assert clean("\x1b[31m\u202eevil") == "␛[31m<U+202E>evil"
    assert clean("plain text, العربية and עברית stay as they are") == (
        "plain text, العربية and עברית stay as they are"
    )


def test_entities_still_land_on_their_text_around_bidi_escapes() -> None:
    body = "host \u202edb-1\u202c is down at 10.0.0.1"
    entities = [
        {"label": "HOSTNAME", "start": 6, "end": 10, "text": "db-1"},
        {"label": "IP", "start": 25, "end": 33, "text": "10.0.0.1"},
    ]
    text = highlighted(body, entities)
    assert text.plain == "host <U+202E>db-1‹HOSTNAME›<U+202C> is down at 10.0.0.1‹IP›"
    styled = {text.plain[s.start : s.end] for s in text.spans if "on" in str(s.style)}
    assert styled == {"db-1", "10.0.0.1"}


def test_release_lines_escape_bidi_and_name_reply_to() -> None:
    lines = release_lines(
        "help\u202e@x.example", "boss@x.example", "Re: \u2067pay", "Hi,\n\u202eline\n"
    )
    shown = "\n".join(t.plain for t in lines)
    assert "\u202e" not in shown and "\u2067" not in shown
    assert "help<U+202E>@x.example" in shown and "Re: <U+2067>pay" in shown
    assert "from the Reply-To header; the mail came from boss@x.example" in shown
    assert "│ <U+202E>line" in shown


@pytest.mark.parametrize(
    ("delta", "shown"),
    [
        (timedelta(seconds=45), "45s"),
        (timedelta(minutes=12), "12m"),
        (timedelta(hours=3, minutes=5), "3h05"),
        (timedelta(hours=23, minutes=59), "23h59"),
        (timedelta(days=14, hours=3), "14d"),
        (timedelta(days=400), "400d"),
    ],
)
def test_ages_read_plainly(delta: timedelta, shown: str) -> None:
    assert age(FIXED_NOW - delta, FIXED_NOW) == shown


def test_narrow_terminals_drop_bucket_held_by_priority_owner_never_due_or_state() -> None:
    widths = (180, 160, 140, 120, 100)
    keys = {width: [k for k, _, _ in fit_columns(width)] for width in widths}
    assert {"bucket", "holder", "priority", "owner"} <= set(keys[180])
    assert "bucket" not in keys[160] and {"holder", "priority", "owner"} <= set(keys[160])
    assert "holder" not in keys[140] and "priority" not in keys[140] and "owner" in keys[140]
    for width in (120, 100):
        assert not {"bucket", "holder", "priority", "owner"} & set(keys[width])
        assert {"due", "state", "intent", "subject", "sender", "age"} <= set(keys[width])
    for width in widths:
        assert sum(w + 2 for _, _, w in fit_columns(width)) <= width - 2  # beside the scrollbar


def test_prefs_are_kept_per_rep_and_survive_a_bad_file(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "review.json"
    flt = QueueFilter(
        view="all", sort="age", descending=True, intents=("billing",), min_confidence=0.5
    )
    save_prefs(path, "alice", QueuePrefs(flt=flt, last_seen=FIXED_NOW))
    save_prefs(path, "bob", QueuePrefs())
    assert load_prefs(path, "alice") == QueuePrefs(flt=flt, last_seen=FIXED_NOW)
    assert load_prefs(path, "bob") == QueuePrefs()
    assert load_prefs(path, "carol") == QueuePrefs()
    path.write_text("{not json")
    assert load_prefs(path, "alice") == QueuePrefs()
    assert load_prefs(None, "alice") == QueuePrefs()
