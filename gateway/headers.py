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
    text = _CONTROL.sub(" ", value.replace("\r", " ").replace("\n", " "))
    return " ".join(text.split())[:limit]


def decoded(msg: EmailMessage, name: str) -> str:
    """RFC 2047-decoded header value, tolerant of unknown charsets and 8-bit bytes."""
    value = msg.get(name)
    if value is None:
        return ""
    try:
        return clean(str(make_header(decode_header(str(value)))))
    except (LookupError, UnicodeError, ValueError, TypeError):
        return clean(str(value).encode("utf-8", "surrogateescape").decode("utf-8", "replace"))


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
