"""The reply as it goes on the wire: headers, body, signature and SMTP envelope.

Split from the sender runner (`sender.py`) so the rules of the message itself can be
read, and tested, apart from claiming, delivering and recording it. Nothing here talks
to a relay; `build_message(...).as_bytes()` is exactly what the runner hands to one.

Addresses go on the wire as SMTP can carry them: an internationalised domain as
punycode (IDNA 2008 with UTS #46 mapping, so `straße.de` stays `xn--strae-oqa.de` and
never becomes someone else's `strasse.de`, as the stdlib's IDNA 2003 codec would have
it), and a non-ASCII local part only over a relay that offers SMTPUTF8 (the
message is then serialised with UTF-8 headers; the relay client refuses such a reply
before MAIL FROM when the relay does not offer it). Message-ID, In-Reply-To and
References are never RFC 2047-encoded, however long the ids, or mail clients would not
thread the reply.
"""

from __future__ import annotations

import email.policy
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

import idna

from gateway import headers as h
from gateway.config import SenderConfig
from storage.models import Outbox

_ID_HEADERS = frozenset({"message-id", "in-reply-to", "references"})


def _fold_ids(name: str, value: str, width: int, linesep: str) -> str | None:
    """`Name: <id> <id>`, folded only between ids; None if not an id header of ASCII ids.

    The stdlib folds In-Reply-To and References as unstructured text and turns an id
    longer than the line (Exchange ids pass 100 characters) into RFC 2047 encoded
    words, which no mail client threads on. An id may make a line long (RFC 5322
    allows 998), but it must stay verbatim.
    """
    if name.lower() not in _ID_HEADERS:
        return None
    ids = str(value).split()
    if not ids or not all(i.isascii() for i in ids):
        return None
    lines = [f"{name}: {ids[0]}"]
    for msgid in ids[1:]:
        if len(lines[-1]) + 1 + len(msgid) > width:
            lines.append("")
        lines[-1] += f" {msgid}"
    return linesep.join(lines) + linesep


class WirePolicy(email.policy.EmailPolicy):
    """`email.policy.SMTP`, except that message-id headers are folded by `_fold_ids`."""

    def fold(self, name: str, value: str) -> str:
        folded = _fold_ids(name, value, self.max_line_length or 998, self.linesep)
        return folded if folded is not None else super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        folded = _fold_ids(name, value, self.max_line_length or 998, self.linesep)
        return folded.encode("ascii") if folded is not None else super().fold_binary(name, value)


WIRE = WirePolicy(linesep="\r\n")
# RFC 6532: with SMTPUTF8 the headers carry UTF-8 as is (addresses cannot be encoded).
WIRE_UTF8 = WIRE.clone(utf8=True)


def bracketed(msgid: str) -> str:
    bare = msgid.strip().strip("<>")
    return f"<{bare}>"


def signature(cfg: SenderConfig, rep_name: str) -> str:
    if not cfg.signature:
        return ""
    return cfg.signature.replace("{rep_name}", rep_name).replace("{from_name}", cfg.from_name)


def envelope_address(addr: str) -> str:
    """`addr` as SMTP carries it: an internationalised domain becomes punycode.

    A non-ASCII local part has no ASCII form; only a relay offering SMTPUTF8 takes it.
    """
    local, at, domain = h.clean(addr).rpartition("@")
    if not at or domain.isascii():
        return f"{local}{at}{domain}"
    try:
        ascii_domain = idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise ValueError(f"{domain!r} is not a valid internationalised domain name") from exc
    return f"{local}@{ascii_domain}"


def envelope(row: Outbox, cfg: SenderConfig) -> tuple[str, list[str]]:
    """Envelope sender and recipients of an outbox row, as they go on the wire."""
    return envelope_address(cfg.from_address), [envelope_address(a) for a in row.to_addrs]


def needs_utf8(sender: str, recipients: list[str]) -> bool:
    """Whether an envelope address is still non-ASCII (a local part), so needs SMTPUTF8.

    The same test as the relay client's `smtputf8_needed_by`, which refuses the reply
    when the relay does not offer SMTPUTF8.
    """
    return not all(r.isascii() for r in recipients) or not sender.isascii()


def build_message(row: Outbox, cfg: SenderConfig, *, now: datetime) -> EmailMessage:
    """The RFC 5322 message for an outbox row; `as_bytes()` gives it exactly as sent."""
    sender, rcpts = envelope(row, cfg)
    utf8 = needs_utf8(sender, rcpts)
    msg = EmailMessage(policy=WIRE_UTF8 if utf8 else WIRE)
    # Under SMTPUTF8 the customer sees addresses as written; otherwise in ASCII form,
    # since an address in an encoded word is no address at all.
    shown_from = h.clean(cfg.from_address) if utf8 else sender
    local, at, domain = shown_from.rpartition("@")
    if not at:
        local, domain = domain, ""
    msg["From"] = Address(display_name=cfg.from_name, username=local, domain=domain)
    msg["To"] = ", ".join([h.clean(a) for a in row.to_addrs] if utf8 else rcpts)
    subject = h.clean(row.subject)
    if row.ticket_id is not None and f"[#{row.ticket_id}]" not in subject:
        subject = f"{subject} [#{row.ticket_id}]".strip()
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = bracketed(row.message_id)
    if row.in_reply_to:
        msg["In-Reply-To"] = bracketed(row.in_reply_to)
    refs = [bracketed(r) for r in row.references if r]
    if row.in_reply_to and bracketed(row.in_reply_to) not in refs:
        refs.append(bracketed(row.in_reply_to))
    if refs:
        msg["References"] = " ".join(refs)
    # RFC 3834: a human wrote this, so auto-responders may answer it once.
    msg["Auto-Submitted"] = "no"
    body = row.body.rstrip("\n")
    sig = signature(cfg, row.released_by)
    text = f"{body}\n\n{sig}\n" if sig else f"{body}\n"
    # Quoted-printable keeps UTF-8 intact and every line under the SMTP limit.
    msg.set_content(text, charset="utf-8", cte="quoted-printable")
    return msg
