"""Fast, forgiving extraction of the few headers ingest needs.

The SMTP accept path must stay cheap (the front door is CPU-bound), so ingest reads only
the header block with the stdlib's header parser rather than the whole MIME tree. Values
are unfolded and stripped of CR/LF and control characters, so a hostile header cannot
inject lines into anything we later write.

Addresses are read from the header as it came over the wire, before any RFC 2047
decoding: an encoded word is a display name and nothing else, so
`=?utf-8?b?YWxpY2VAY29ycC50ZXN0?= <attacker@evil.test>` is from attacker@evil.test
however its name decodes. Only the display names are decoded afterwards, with CR, LF and
NUL removed. Raw 8-bit header bytes are UTF-8 (RFC 6532, SMTPUTF8 mail), and Latin-1
only when they are not valid UTF-8.
"""

from __future__ import annotations

import re
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import Message as EmailMessage
from email.parser import BytesHeaderParser
from email.policy import compat32

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SURROGATE = re.compile("[\udc80-\udcff]")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_NAME_BREAKS = re.compile(r"[\r\n\x00]")
_WORD = r"=\?[^?\s]+\?[bBqQ]\?\S*?\?="
_ENCODED_WORD = re.compile(_WORD)
# Adjacent encoded words are one text: the space between them is not part of it.
_ENCODED_RUN = re.compile(rf"{_WORD}(?:\s+{_WORD})*")
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


def wire_text(value: bytes) -> str:
    """Header bytes as text: UTF-8 (RFC 6532), or Latin-1 when they are not valid UTF-8."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def from_surrogates(value: str) -> str:
    """A value the stdlib read with surrogate escapes for 8-bit bytes, as `wire_text`."""
    if not _SURROGATE.search(value):
        return value
    try:
        return value.encode("utf-8", "surrogateescape").decode("utf-8")
    except UnicodeError:  # not UTF-8: each escaped byte is its Latin-1 character
        return _SURROGATE.sub(lambda m: chr(ord(m.group()) - 0xDC00), value)


def raw_value(msg: EmailMessage, name: str) -> str | None:
    """The first `name` header as it came over the wire: unfolded, 8-bit bytes decoded
    as text, encoded words left alone. None if the header is absent."""
    wanted = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == wanted:
            text = value if isinstance(value, str) else str(value)
            return _FOLD.sub("", from_surrogates(text)).strip()
    return None


def decoded(msg: EmailMessage, name: str) -> str:
    """RFC 2047-decoded header value, tolerant of unknown charsets and 8-bit bytes."""
    value = raw_value(msg, name)
    if value is None:
        return ""
    return decode_words(value)


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words; anything undecodable is kept readable, not raised."""
    return clean(_decode(value))


def _decode(value: str) -> str:
    value = from_surrogates(value)
    if "=?" not in value:
        return value
    # Run by run, so raw UTF-8 text next to an encoded word (RFC 6532 mail) stays intact.
    return _ENCODED_RUN.sub(_decode_run, value)


def _decode_run(match: re.Match[str]) -> str:
    try:
        return str(make_header(decode_header(match.group())))
    except (LookupError, UnicodeError, ValueError, TypeError, AssertionError, HeaderParseError):
        return match.group()


_QUICK = frozenset({"message-id", "from", "to", "subject", "in-reply-to", "references"})


def quick_headers(raw: bytes) -> dict[str, str]:
    """The first value of each header ingest needs, unfolded, without a MIME parse.

    A plain line scan of the header block is several times faster than the stdlib's
    parser, and the SMTP accept path runs it for every message. 8-bit bytes are read as
    UTF-8, or Latin-1 when they are not valid UTF-8 (`wire_text`).
    """
    found: dict[str, str] = {}
    current: str | None = None
    for line in header_block(raw).split(b"\n"):
        if line[:1] in (b" ", b"\t"):
            if current is not None:
                found[current] += " " + wire_text(line.strip())
            continue
        name, sep, value = line.partition(b":")
        current = None
        if not sep:
            continue
        key = name.strip().lower().decode("ascii", "replace")
        if key in _QUICK and key not in found:
            found[key] = wire_text(value.strip())
            current = key
    return found


# The everyday forms, `Name <a@b>` and `a@b`, skip the general reader below. Neither lets
# an `@` into the name, so an encoded word that hides one takes the general path.
_NAMED_ADDR = re.compile(r'\s*"?([^"<>,;:@\\()]*?)"?\s*<([^<>\s"(),;:@]+@[^<>\s"(),;:@]+)>\s*')
_BARE_ADDR = re.compile(r"\s*([^<>\s\"(),;:@]+@[^<>\s\"(),;:@]+)\s*")


def display_name(phrase: str) -> str:
    """A raw display name decoded for people: never an address, never a line break."""
    return clean(_NAME_BREAKS.sub("", _decode(" ".join(phrase.split()))))


def _mailbox(phrase: str, plain: str, angles: list[str], comment: str) -> tuple[str, str] | None:
    if angles:
        # `@relay:` source routes are dropped. Two angle-addrs in one mailbox are two
        # claims about who wrote it; believe neither.
        addr = _addr(angles[0].rpartition(":")[2]) if len(angles) == 1 else ""
        return display_name(phrase), addr
    # A mailbox without <...> is one bare word, outside quotes and comments (`plain`);
    # more words are a name with no address.
    words = plain.split()
    bare = words[0] if len(words) == 1 and not _ENCODED_WORD.fullmatch(words[0]) else ""
    if not bare and not phrase.strip():
        return None
    return display_name(comment if bare else phrase), _addr(bare)


def _addr(text: str) -> str:
    return "".join(_CONTROL.sub(" ", text).split()).lower()


def mailboxes(value: str) -> list[tuple[str, str]]:
    """(display name, lower-cased address) of each mailbox of a raw address-list value.

    A small RFC 5322 reader over the undecoded text: quoted strings and comments are
    display text, the angle-addr is the address, a group's name is dropped. Encoded
    words are decoded only in the display names, once the address is fixed. A mailbox
    with two angle-addrs, or none and no single bare word, has no address.
    """
    found: list[tuple[str, str]] = []
    phrase: list[str] = []
    plain: list[str] = []  # the phrase outside quotes and comments, where a bare addr is
    comment: list[str] = []
    angles: list[str] = []
    angle: list[str] | None = None
    quoted = False
    depth = 0
    chars = iter(value)

    def flush() -> None:
        box = _mailbox("".join(phrase), "".join(plain), angles, "".join(comment))
        if box is not None:
            found.append(box)
        for part in (phrase, plain, comment, angles):
            part.clear()

    for char in chars:
        if quoted or depth:
            if char == "\\":
                char = next(chars, "")
            elif quoted and char == '"':
                quoted = False
                continue
            elif depth and char in "()":
                depth += 1 if char == "(" else -1
                if not depth:
                    comment.append(" ")
                    continue
            (phrase if quoted else comment).append(char)
        elif angle is not None:
            if char == ">":
                angles.append("".join(angle))
                angle = None
            else:
                angle.append(char)
        elif char in '"(':
            quoted, depth = char == '"', int(char == "(")
            plain.append(" ")
        elif char == "<":
            angle = []
        elif char in ",;":
            flush()
        elif char == ":":
            phrase.clear()  # a group's display name: `undisclosed-recipients:;`
            plain.clear()
        else:
            phrase.append(char)
            plain.append(char)
    if angle is not None and not angles:
        angles.append("".join(angle))  # an unclosed `<a@b`, as clients read it
    flush()
    return found


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


def split_address(value: str) -> tuple[str, str]:
    """(display name, lower-cased address) of a single-address raw header value."""
    match = _NAMED_ADDR.fullmatch(value) or _BARE_ADDR.fullmatch(value)
    if match:
        groups = match.groups()
        display = groups[0] if len(groups) == 2 else ""
        return display_name(display), _addr(groups[-1])
    found = mailboxes(value)
    return found[0] if found else ("", "")


def split_addresses(value: str) -> list[str]:
    """The addresses of a raw address-list value, lower-cased."""
    # One mailbox in an everyday form reads as in `split_address` (no `,` or `;` fits
    # either pattern outside quotes); a property test holds it to `mailboxes`.
    match = value and (_NAMED_ADDR.fullmatch(value) or _BARE_ADDR.fullmatch(value))
    if match:
        return [_addr(match.groups()[-1])]
    return [addr for _, addr in mailboxes(value) if addr] if value else []


def address(msg: EmailMessage, name: str) -> tuple[str, str]:
    """(display name, lower-cased address) of a single-address header."""
    return split_address(raw_value(msg, name) or "")


def addresses(msg: EmailMessage, name: str) -> list[str]:
    return split_addresses(raw_value(msg, name) or "")


def rendered_addresses(value: str) -> str:
    """An address header to keep and show: `"decoded name" <address>` per mailbox.

    The name is quoted, so reading the value again yields the same addresses, whatever
    the name decoded to.
    """
    shown = []
    for name, addr in mailboxes(value):
        quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        shown.append(f"{quoted} <{addr}>" if name and addr else addr or quoted)
    return ", ".join(shown)
