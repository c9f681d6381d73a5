"""Fast, forgiving extraction of the few headers ingest needs.

The SMTP accept path must stay cheap (the front door is CPU-bound), so ingest reads only
the header block with the stdlib's header parser rather than the whole MIME tree. Values
are unfolded and stripped of CR/LF and control characters, so a hostile header cannot
inject lines into anything we later write.
"""

from __future__ import annotations

import re
from email.header import decode_header, make_header
from email.message import Message as EmailMessage
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses, parseaddr

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_MSGID = re.compile(r"<([^<>\s]+)>")


def header_block(raw: bytes) -> bytes:
    match = _HEADER_END.search(raw)
    return raw[: match.start()] if match else raw


def parse_headers(raw: bytes) -> EmailMessage:
    return BytesHeaderParser(policy=compat32).parsebytes(header_block(raw) + b"\r\n\r\n")


def clean(value: str | None, limit: int = 998) -> str:
    """Unfold, drop control characters, trim: safe to store and display as one line."""
    if not value:
        return ""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            # Raw 8-bit bytes kept as surrogate escapes: no database can store those.
            value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    text = _CONTROL.sub(" ", value.replace("\r", " ").replace("\n", " "))
    return " ".join(text.split())[:limit]


def decoded(msg: EmailMessage, name: str) -> str:
    """RFC 2047-decoded header value, tolerant of unknown charsets and 8-bit bytes."""
    value = msg.get(name)
    if value is None:
        return ""
    return decode_words(str(value))


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words; anything undecodable is kept readable, not raised."""
    if "=?" not in value:
        return clean(value.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
    try:
        return clean(str(make_header(decode_header(value))))
    except (LookupError, UnicodeError, ValueError, TypeError):
        return clean(value.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))


_QUICK = frozenset({"message-id", "from", "to", "subject", "in-reply-to", "references"})


def quick_headers(raw: bytes) -> dict[str, str]:
    """The first value of each header ingest needs, unfolded, without a MIME parse.

    A plain line scan of the header block is several times faster than the stdlib's
    parser, and the SMTP accept path runs it for every message. 8-bit bytes become
    surrogate escapes, as in the stdlib, so nothing is lost before decoding.
    """
    found: dict[str, str] = {}
    current: str | None = None
    for line in header_block(raw).split(b"\n"):
        if line[:1] in (b" ", b"\t"):
            if current is not None:
                found[current] += " " + line.strip().decode("utf-8", "surrogateescape")
            continue
        name, sep, value = line.partition(b":")
        current = None
        if not sep:
            continue
        key = name.strip().lower().decode("ascii", "replace")
        if key in _QUICK and key not in found:
            found[key] = value.strip().decode("utf-8", "surrogateescape")
            current = key
    return found


# The everyday forms, `Name <a@b>` and `a@b`, skip the stdlib's general address parser.
_NAMED_ADDR = re.compile(r'\s*"?([^"<>,;:@\\()]*?)"?\s*<([^<>\s"(),;:@]+@[^<>\s"(),;:@]+)>\s*')
_BARE_ADDR = re.compile(r"\s*([^<>\s\"(),;:@]+@[^<>\s\"(),;:@]+)\s*")


def split_address(value: str) -> tuple[str, str]:
    """(display name, lower-cased address) of a single-address header value."""
    match = _NAMED_ADDR.fullmatch(value) or _BARE_ADDR.fullmatch(value)
    if match:
        groups = match.groups()
        display = groups[0] if len(groups) == 2 else ""
        return clean(display), clean(groups[-1]).lower()
    display, addr = parseaddr(value)
    return clean(display), clean(addr).lower()


def split_addresses(value: str) -> list[str]:
    if not value:
        return []
    if '"' not in value and "(" not in value and ";" not in value:
        parts = [split_address(part) for part in value.split(",") if part.strip()]
        if all(addr for _, addr in parts):
            return [addr for _, addr in parts]
    return [clean(a).lower() for _, a in getaddresses([value]) if a]


def message_ids(value: str | None) -> list[str]:
    """All <id> tokens in a Message-ID/In-Reply-To/References value, normalised."""
    if not value:
        return []
    return [normalise_msgid(m) for m in _MSGID.findall(str(value))]


def normalise_msgid(value: str) -> str:
    value = clean(value).strip().strip("<>").strip()
    # The local part is case-sensitive in theory, but MTAs and clients mangle case in
    # practice; the domain never matters for case.
    return value


def first_msgid(value: str | None) -> str | None:
    ids = message_ids(value)
    if ids:
        return ids[0]
    text = clean(value)
    return text.strip("<>") or None if text else None


def address(msg: EmailMessage, name: str) -> tuple[str, str]:
    """(display name, lower-cased address) of a single-address header."""
    display, addr = parseaddr(decoded(msg, name))
    return clean(display), clean(addr).lower()


def addresses(msg: EmailMessage, name: str) -> list[str]:
    values = [decoded(msg, name)] if msg.get(name) is not None else []
    return [clean(a).lower() for _, a in getaddresses(values) if a]
