"""Properties of the header readers, the subject token and ingest under hostile input.

Mail comes from anyone, so the readers must hold for any header at all: parsing raises
nothing but `ParseError` and never lets CR, LF or NUL into a name or subject; only a
well-formed `[#123]` token names a ticket; and ingest stores every byte string it is
handed, byte for byte, exactly once.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select

from gateway import headers as h
from gateway.conversation import thread
from gateway.inbound.ingest import ingest
from gateway.inbound.parse import ParseError, parse_message
from storage.db import init_db, make_engine
from storage.models import Message, RawMessage, Ticket

BREAKS = set("\r\n\x00")
SPECIALS = ' <>"(),:;@\\'
# The module-scoped engines are shared on purpose; each example empties what it uses.
SHARED = [HealthCheck.function_scoped_fixture]
CHARSETS = st.one_of(
    st.sampled_from(
        ["utf-8", "UTF-8", "iso-8859-1", "koi8-r", "shift_jis", "gb2312", "utf-16",
         "us-ascii", "x-unknown", "utf-8*en", "", "latin-1\x00"]
    ),
    st.from_regex(r"[A-Za-z0-9_.*-]{1,20}", fullmatch=True),
)  # fmt: skip
B64_PAYLOAD = st.one_of(
    st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
    st.from_regex(r"[A-Za-z0-9+/=]{0,41}", fullmatch=True),  # broken padding and length
)
Q_PAYLOAD = st.text(st.sampled_from("=_?ABCabc09F\xe9 \r\n\x00"), max_size=40)
ENCODED_WORD = st.one_of(
    st.builds(lambda cs, e, p: f"=?{cs}?{e}?{p}?=", CHARSETS, st.sampled_from("bB"), B64_PAYLOAD),
    st.builds(lambda cs, e, p: f"=?{cs}?{e}?{p}?=", CHARSETS, st.sampled_from("qQ"), Q_PAYLOAD),
    st.sampled_from(["=?", "?=", "=?utf-8?b?", "=?utf-8?x?abc?=", "=??b??="]),
).map(str.encode)
PIECE = st.one_of(
    ENCODED_WORD,
    st.text(max_size=20).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.text(st.characters(max_codepoint=255), max_size=20).map(lambda t: t.encode("latin-1")),
    st.binary(max_size=20),  # raw 8-bit bytes, valid UTF-8 or not
    st.sampled_from(
        [b"\r", b"\n", b"\r\n", b"\r\n ", b"\n\t", b"\x00", *(c.encode() for c in SPECIALS)]
    ),
    st.integers(990, 3000).map(lambda n: b"x" * n),  # longer than any line should be
)
HEADER_VALUE = st.lists(PIECE, max_size=8).map(b"".join)
HEADER_NAME = st.one_of(
    st.sampled_from(["From", "To", "Cc", "Subject", "Message-ID", "In-Reply-To", "References",
                     "Reply-To", "Content-Type", "Date", "subject", "FROM"]),
    st.from_regex(r"[!-9;-~]{1,20}", fullmatch=True),
)  # fmt: skip
HEADER_BLOCK = st.lists(
    st.tuples(HEADER_NAME, HEADER_VALUE, st.sampled_from([b"\r\n", b"\n", b"\r"])), max_size=8
).map(lambda lines: b"".join(n.encode() + b": " + v + end for n, v, end in lines))


@settings(max_examples=300, deadline=None)
@given(HEADER_VALUE, HEADER_VALUE, HEADER_BLOCK, st.binary(max_size=60))
def test_parsing_any_header_raises_only_parse_error_and_names_stay_one_line(
    sender: bytes, subject: bytes, others: bytes, body: bytes
) -> None:
    raw = b"From: " + sender + b"\r\nSubject: " + subject + b"\r\n" + others + b"\r\n" + body
    try:
        parsed = parse_message(raw)
    except ParseError:
        return
    assert not BREAKS & set(parsed.from_name)
    assert not BREAKS & set(parsed.subject)
    assert not BREAKS & set(parsed.from_addr)


@settings(max_examples=300, deadline=None)
@given(HEADER_VALUE)
def test_decoders_never_raise_and_never_yield_a_line_break(value: bytes) -> None:
    text = h.wire_text(value)
    for decoded in (h.decode_words(text), h.display_name(text), h.split_address(text)[0]):
        assert not BREAKS & set(decoded)
    msg = h.parse_headers(b"Subject: " + value + b"\r\n\r\n")
    assert not BREAKS & set(h.decoded(msg, "Subject"))
    for name, _addr in h.mailboxes(text):
        assert not BREAKS & set(name)


# --- The `[#123]` subject token ------------------------------------------------------

TICKETS = 12
CUSTOMER = "dana@acme.example"
DIGITS = "0123456789"


def reference_tokens(subject: str) -> list[str]:
    """The documented rule, spelled out: `[#`, one or more ASCII digits, `]`."""
    found = []
    for start in range(len(subject)):
        if not subject.startswith("[#", start):
            continue
        end = start + 2
        while end < len(subject) and subject[end] in DIGITS:
            end += 1
        if end > start + 2 and subject[end : end + 1] == "]":
            found.append(subject[start + 2 : end])
    return found


def expected_match(subject: str, on_ticket: bool) -> tuple[int | None, list[tuple[str, str]]]:
    """(ticket id, passed-over tokens) the reference rule gives: the last token naming an
    existing ticket the sender is on; out-of-range ids and other people's tickets are
    passed over on record, ids of tickets that do not exist silently."""
    ignored: list[tuple[str, str]] = []
    for token in reversed(reference_tokens(subject)):
        digits = token.lstrip("0")
        if not digits or len(digits) > 10 or int(digits) > thread.MAX_TICKET_ID:
            ignored.append((token[:40], thread.OUT_OF_RANGE))
        elif int(digits) <= TICKETS:
            if on_ticket:
                return int(digits), ignored
            ignored.append((token, thread.NOT_A_PARTICIPANT))
    return None, ignored


def _token(number: int, zeros: int) -> str:
    return f"[#{'0' * zeros}{number}]"


TOKEN_PIECE = st.one_of(
    st.builds(_token, st.integers(0, TICKETS + 3), st.integers(0, 3)),
    st.builds(_token, st.integers(2**31 - 3, 2**31 + 3) | st.integers(10**9, 10**40), st.just(0)),
    st.integers(11, 6000).map(lambda n: "[#" + "9" * n + "]"),  # past int()'s digit limit
    st.sampled_from([
        "[# 12]", "[#12a]", "[#12 ]", "[ #12]", "[#-3]", "[#+3]", "[#]", "#12", "[12]",
        "[#1.5]", "[#0x1]", "[#\u0661\u0662]", "[#\uff11\uff12]", "[#\u00b2]", "[[#", "]]",
        "[#[#3]]", "[#3]]", "\r\n", "\x00", "Re: ", "Fwd: ",
    ]),
    st.text(st.sampled_from("[]#0123456789 a\u0663"), max_size=12),
    st.text(max_size=10),
)  # fmt: skip


@pytest.fixture(scope="module")
def token_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('tokens') / 'q.sqlite3'}")
    init_db(engine)
    with Session(engine) as session:
        for n in range(TICKETS):
            session.add(Ticket(subject=f"ticket {n + 1}", customer_addr=CUSTOMER))
        session.commit()
    yield engine
    engine.dispose()


@settings(max_examples=400, deadline=None, suppress_health_check=SHARED)
@given(st.lists(TOKEN_PIECE, max_size=8).map("".join), st.booleans())
def test_only_a_well_formed_token_names_a_ticket(
    token_engine: Engine, subject: str, on_ticket: bool
) -> None:
    sender = CUSTOMER if on_ticket else "mallory@elsewhere.example"
    with Session(token_engine) as session:
        match = thread.subject_ticket(session, subject, sender)
    wanted, ignored = expected_match(subject, on_ticket)
    assert match.ticket_id == wanted
    assert [(t.token, t.reason) for t in match.ignored] == ignored
    if wanted is None:
        assert match.signal == (thread.TOKEN_IGNORED if ignored else thread.NEW)
    else:
        assert match.signal == thread.SUBJECT_TOKEN


# --- Ingest ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ingest_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{Path(tmp_path_factory.mktemp('ingest')) / 'q.sqlite3'}")
    init_db(engine)
    yield engine
    engine.dispose()


def _empty(engine: Engine) -> None:
    """Each example starts on empty tables, as if on a fresh database."""
    with engine.begin() as conn:
        for table in reversed(SQLModel.metadata.sorted_tables):
            conn.execute(delete(table))


def _assert_stored_once(engine: Engine, raw: bytes, envelope_from: str | None) -> None:
    _empty(engine)
    first = ingest(engine, raw, source="prop", envelope_from=envelope_from)
    again = ingest(engine, raw, source="prop", envelope_from=envelope_from)
    assert not first.duplicate and again.duplicate
    assert again.message_pk == first.message_pk
    with Session(engine) as session:
        message = session.get(Message, first.message_pk)
        assert message is not None and message.state == "received" and message.size == len(raw)
        data = session.exec(
            select(RawMessage.data).where(col(RawMessage.sha256) == message.sha256)
        ).one()
        count = session.exec(select(func.count()).select_from(Message)).one()
    assert bytes(data) == raw and count == 1


ENVELOPE = st.none() | st.text(max_size=30)


@settings(max_examples=150, deadline=None, suppress_health_check=SHARED)
@given(st.binary(max_size=400), ENVELOPE)
def test_any_bytes_are_stored_byte_identical_and_once(
    ingest_engine: Engine, raw: bytes, envelope_from: str | None
) -> None:
    _assert_stored_once(ingest_engine, raw, envelope_from)


@settings(max_examples=150, deadline=None, suppress_health_check=SHARED)
@given(HEADER_BLOCK, st.sampled_from([b"\r\n", b"\n", b""]), st.binary(max_size=40), ENVELOPE)
def test_any_header_block_is_stored_byte_identical_and_once(
    ingest_engine: Engine, block: bytes, gap: bytes, body: bytes, envelope_from: str | None
) -> None:
    _assert_stored_once(ingest_engine, block + gap + body, envelope_from)
