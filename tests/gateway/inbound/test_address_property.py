"""Property: a display name, however it is written or encoded, never supplies an address.

Random names (any text: `@`, angle brackets, quotes, commas, CR, LF, NUL) are written as
B or Q encoded words or quoted strings in front of a real address; the address read
back is always the real one, at ingest and in the full parse. And for any header text at
all, every address read is spelled literally in that text.
"""

from __future__ import annotations

import base64
import email.quoprimime

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import headers as h
from gateway.inbound.facts import dedupe_key_for
from gateway.inbound.parse import parse_message

LOCAL = st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,15}", fullmatch=True)
DOMAIN = st.from_regex(r"[a-z0-9]{1,10}(\.[a-z0-9]{1,8}){1,2}", fullmatch=True)
ADDRESS = st.builds(lambda local, domain: f"{local}@{domain}", LOCAL, DOMAIN)
NAME = st.text(
    st.one_of(st.sampled_from('@<>",;:()\\\r\n\x00 '), st.characters(codec="utf-8")), max_size=40
)


def b_word(name: str) -> str:
    return f"=?utf-8?b?{base64.b64encode(name.encode()).decode()}?="


def q_word(name: str) -> str:
    return email.quoprimime.header_encode(name.encode(), charset="utf-8")


def quoted(name: str) -> str:
    text = name.replace("\r", "").replace("\n", "").replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


WRITE_NAME = st.sampled_from([b_word, q_word, quoted])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(NAME, WRITE_NAME, ADDRESS), min_size=1, max_size=4))
def test_names_never_supply_an_address(boxes: list[tuple[str, object, str]]) -> None:
    header = ", ".join(f"{write(name)} <{addr}>" for name, write, addr in boxes)  # type: ignore[operator]
    wanted = [addr for _, _, addr in boxes]
    assert h.split_addresses(header) == wanted
    assert h.split_address(header)[1] == wanted[0]
    for name, _ in h.mailboxes(header):
        assert not set("\r\n\x00") & set(name)
    raw = (
        f"From: {header}\r\nTo: {header}\r\nReply-To: {header}\r\nSubject: s\r\n\r\nbody\r\n"
    ).encode()
    parsed = parse_message(raw)
    assert parsed.from_addr == wanted[0]
    assert list(parsed.to) == wanted
    # The header kept on the message reads back to the same addresses.
    assert h.split_addresses(parsed.header("Reply-To") or "") == wanted
    assert dedupe_key_for(raw)[0].startswith("sha:")


def _squeezed(text: str) -> str:
    return "".join(h.clean(text.replace("\x00", " ")).split()).casefold()


@settings(max_examples=500, deadline=None)
@given(
    st.text(
        st.one_of(st.sampled_from('=?@<>",;:()\\ \t'), st.characters(codec="utf-8")), max_size=80
    )
)
def test_every_address_read_is_spelled_in_the_raw_header(header: str) -> None:
    for _, addr in h.mailboxes(header):
        assert addr.casefold() in _squeezed(header)


@settings(max_examples=500, deadline=None)
@given(st.text(st.sampled_from('ab@.<>",;:()\\ \t=?é'), max_size=30))
def test_the_quick_path_for_one_address_reads_as_the_full_reader(value: str) -> None:
    assert h.split_addresses(value) == [addr for _, addr in h.mailboxes(value) if addr]
