"""Raw bytes → `ParsedMessage`: mail-parser first, the stdlib as a fallback.

Real mail is often broken (bad boundaries, unknown charsets, 8-bit headers, NUL bytes).
Parsing here never decides whether mail is kept — ingest already stored the bytes — it
only decides how much we can understand. Every oddity becomes a `defects` entry the
rep can see; only when nothing at all can be read do we raise `ParseError`, which the
runner turns into a shunt with the reason.
"""

from __future__ import annotations

import base64
import binascii
import email
import logging
import re
from datetime import UTC, datetime
from email import policy
from email.message import Message as EmailMessage
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any

import mailparser

from gateway import headers as h
from nlp.types import Attachment, ParsedMessage

log = logging.getLogger(__name__)
# mail-parser logs every unhandled content type at WARNING; defects carry that for us.
logging.getLogger("mailparser").setLevel(logging.ERROR)

DEFAULT_MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
MAX_ATTACHMENTS = 50
MAX_TEXT_CHARS = 2_000_000


class ParseError(ValueError):
    """Nothing usable could be read from the message."""


def parse_message(
    raw: bytes, *, max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES
) -> ParsedMessage:
    if not raw or not raw.strip():
        raise ParseError("empty message")
    # NUL bytes break C-level parsers downstream and mean nothing in mail text.
    defects: list[str] = []
    if b"\x00" in raw:
        defects.append("NUL bytes removed")
        raw = raw.replace(b"\x00", b"")
    try:
        parsed = _with_mailparser(raw, max_attachment_bytes, defects)
    except Exception as exc:
        log.info("mail-parser failed (%s); falling back to the stdlib", exc)
        defects.append(f"mail-parser failed: {type(exc).__name__}: {exc}"[:300])
        try:
            parsed = _with_stdlib(raw, max_attachment_bytes, defects)
        except Exception as exc2:
            raise ParseError(f"unreadable message: {type(exc2).__name__}: {exc2}") from exc2
    if not parsed.headers and not parsed.text.strip() and not parsed.attachments:
        raise ParseError("no headers, no text and no attachments could be read")
    return parsed


def _envelope_fields(msg: EmailMessage) -> dict[str, Any]:
    name, addr = h.address(msg, "From")
    date: datetime | None = None
    raw_date = msg.get("Date")
    if raw_date:
        try:
            date = parsedate_to_datetime(str(raw_date))
            if date.tzinfo is None:
                date = date.replace(tzinfo=UTC)
        except (TypeError, ValueError, IndexError):
            date = None
    return {
        "message_id": h.first_msgid(msg.get("Message-ID")),
        "from_addr": addr,
        "from_name": name,
        "to": tuple(h.addresses(msg, "To")),
        "cc": tuple(h.addresses(msg, "Cc")),
        "subject": h.decoded(msg, "Subject"),
        "date": date,
        "in_reply_to": h.first_msgid(msg.get("In-Reply-To")),
        "references": tuple(h.message_ids(msg.get("References"))),
        "headers": tuple(_header(str(k), v) for k, v in msg.raw_items()),
        "content_type": h.clean(msg.get_content_type()),
    }


_ADDRESS_HEADERS = {"from", "to", "cc", "bcc", "reply-to", "sender", "return-path"}
_TEXT_HEADERS = {"subject", "comments"}


def _header(name: str, value: Any) -> tuple[str, str]:
    """A header as kept on the message: address headers re-rendered with quoted names
    (reading one again yields the sender's real address, never one from a decoded
    name), text headers decoded, the rest as they came."""
    raw = h.from_surrogates(value if isinstance(value, str) else str(value))
    key = name.lower()
    if key in _ADDRESS_HEADERS and key != "return-path":
        return name, h.clean(h.rendered_addresses(raw), 4000)
    if key in _TEXT_HEADERS:
        return name, h.decode_words(raw)
    return name, h.clean(raw, 4000)


def _with_mailparser(raw: bytes, cap: int, defects: list[str]) -> ParsedMessage:
    mp = mailparser.parse_from_bytes(raw)
    msg: EmailMessage = mp.message
    fields = _envelope_fields(msg)
    for item in mp.defects or []:
        for key in item:
            defects.append(f"{key}: {', '.join(map(str, item[key]))}"[:300])
    text = "\n".join(p for p in (mp.text_plain or []) if p)
    html = "\n".join(p for p in (mp.text_html or []) if p)
    if not text.strip() and html:
        text = html_to_text(html)
    attachments = tuple(_mp_attachment(a, cap, defects) for a in mp.attachments[:MAX_ATTACHMENTS])
    if len(mp.attachments) > MAX_ATTACHMENTS:
        defects.append(
            f"{len(mp.attachments) - MAX_ATTACHMENTS} attachments beyond the cap ignored"
        )
    return ParsedMessage(
        text=_cap_text(text, defects),
        html=html[:MAX_TEXT_CHARS],
        attachments=attachments,
        defects=tuple(_dedupe(defects)),
        **fields,
    )


def _mp_attachment(item: dict[str, Any], cap: int, defects: list[str]) -> Attachment:
    name = h.clean(item.get("filename") or "attachment", 255)
    payload = item.get("payload") or ""
    data: bytes
    if item.get("binary"):
        try:
            data = base64.b64decode(payload)
        except (binascii.Error, ValueError):
            defects.append(f"attachment {name}: undecodable base64")
            data = payload.encode("ascii", "replace") if isinstance(payload, str) else b""
    else:
        charset = item.get("charset") or "utf-8"
        try:
            data = payload.encode(charset, "replace") if isinstance(payload, str) else payload
        except LookupError:
            data = payload.encode("utf-8", "replace")
    size = len(data)
    truncated = size > cap
    if truncated:
        defects.append(f"attachment {name}: {size} bytes, kept the first {cap}")
    return Attachment(
        name=name,
        content_type=h.clean(item.get("mail_content_type") or "application/octet-stream", 200),
        size=size,
        data=data[:cap],
        truncated=truncated,
    )


def _with_stdlib(raw: bytes, cap: int, defects: list[str]) -> ParsedMessage:
    msg = email.message_from_bytes(raw, policy=policy.compat32)
    defects.extend(type(d).__name__ for d in msg.defects)
    fields = _envelope_fields(msg)
    texts: list[str] = []
    htmls: list[str] = []
    attachments: list[Attachment] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        disposition = (part.get_content_disposition() or "").lower()
        ctype = part.get_content_type()
        filename = part.get_filename()
        decoded = part.get_payload(decode=True)
        payload = decoded if isinstance(decoded, bytes) else b""
        if disposition == "attachment" or filename or not ctype.startswith("text/"):
            if len(attachments) < MAX_ATTACHMENTS:
                attachments.append(
                    Attachment(
                        name=h.clean(filename or "attachment", 255),
                        content_type=ctype,
                        size=len(payload),
                        data=payload[:cap],
                        truncated=len(payload) > cap,
                    )
                )
            continue
        text = _decode_payload(payload, part.get_content_charset(), defects)
        (htmls if ctype == "text/html" else texts).append(text)
    text = "\n".join(texts)
    html = "\n".join(htmls)
    if not text.strip() and html:
        text = html_to_text(html)
    return ParsedMessage(
        text=_cap_text(text, defects),
        html=html[:MAX_TEXT_CHARS],
        attachments=tuple(attachments),
        defects=tuple(_dedupe(defects)),
        **fields,
    )


def _decode_payload(payload: bytes, charset: str | None, defects: list[str]) -> str:
    charset = charset or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except LookupError:
        defects.append(f"unknown charset {charset!r}, decoded as UTF-8")
        return payload.decode("utf-8", "replace")


def _cap_text(text: str, defects: list[str]) -> str:
    # Line endings arrive as CRLF from SMTP and bare CR from old clients; keep one kind.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if len(text) > MAX_TEXT_CHARS:
        defects.append(f"body text cut at {MAX_TEXT_CHARS} characters")
        return text[:MAX_TEXT_CHARS]
    return text


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


class _HTMLText(HTMLParser):
    _BLOCK = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "pre"}
    _SKIP = {"script", "style", "head", "title"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skip:
            self._skip -= 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


_BLANKS = re.compile(r"\n\s*\n\s*\n+")


def html_to_text(html: str) -> str:
    """Readable plain text from HTML mail: block tags become line breaks, scripts vanish."""
    parser = _HTMLText()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # HTMLParser is lenient; this is belt and braces
        return re.sub(r"<[^>]+>", " ", html)
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


def summary(parsed: ParsedMessage) -> dict[str, Any]:
    """The JSON kept on the Message row for listing and export without re-parsing."""
    return {
        "text": parsed.text[:200_000],
        "attachments": [
            {
                "name": a.name,
                "size": a.size,
                "content_type": a.content_type,
                "truncated": a.truncated,
            }
            for a in parsed.attachments
        ],
        "defects": list(parsed.defects),
        "date": parsed.date.isoformat() if parsed.date else None,
        "cc": list(parsed.cc),
    }
