"""Property: the front door's fast reading of MAIL FROM / RCPT TO paths agrees with
aiosmtpd's full RFC 5322 grammar on every input, plain or not."""

from __future__ import annotations

from collections.abc import Callable

from aiosmtpd.smtp import SMTP
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.inbound.session import GuardedSMTP

ATEXT = "abcXYZ019!#$%&'*+/=?^_`{|}~-"
ODD = ' .<>@()[]"\\,:;\t\r\n\x00é'
LOCAL = st.text(st.sampled_from(ATEXT + "."), min_size=0, max_size=70)
DOMAIN = st.text(st.sampled_from("abz09-."), min_size=0, max_size=20)
PARAMS = st.sampled_from(["", " ", "\t", " SIZE=4096", "  BODY=8BITMIME SMTPUTF8", " (c) X=1", "x"])


def door(local_part_limit: int) -> GuardedSMTP:
    server = object.__new__(GuardedSMTP)  # the parsers read no other state
    server.local_part_limit = local_part_limit
    return server


def outcome(read: Callable[[str], object], arg: str) -> object:
    try:
        return read(arg)
    except Exception as exc:  # the grammar itself fails on some inputs, such as "<"
        return type(exc)


def both(arg: str, limit: int = 0) -> tuple[object, object]:
    server = door(limit)
    return outcome(server._getaddr, arg), outcome(lambda a: SMTP._getaddr(server, a), arg)


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(["", " ", "\t"]), LOCAL, DOMAIN, PARAMS, st.sampled_from([0, 8, 64]))
@example("", "a", "b.c", " SIZE=1", 0)
@example("", "a..b", "c", "", 0)
@example("", ".a", "c", "", 0)
@example("", "a", "-c.", "", 0)
@example("", "", "", "", 0)
@example("", "longer-than-eight", "c.d", "", 8)
def test_plain_paths_read_as_the_grammar_reads_them(
    lead: str, local: str, domain: str, params: str, limit: int
) -> None:
    arg = f"{lead}<{local}@{domain}>{params}"
    fast, stock = both(arg, limit)
    assert fast == stock


@settings(max_examples=600, deadline=None)
@given(st.text(st.sampled_from(ATEXT + ODD), max_size=40))
@example("<>")
@example("<@route.example:a@b.c>")
@example('<"quoted local"@b.c>')
@example("<a@[127.0.0.1]>")
@example("a@b.c")
@example("<a@b.c>\r\n")
@example("<a@b.c>\x0b")
@example("<é@b.c>")
def test_any_text_reads_as_the_grammar_reads_it(arg: str) -> None:
    fast, stock = both(arg)
    assert fast == stock
