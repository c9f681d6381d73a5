"""Find the part of a reply the customer actually wrote: no quoted history, no signature.

Classifying or mining a follow-up mail must not see the whole thread again, or every
reply looks like the first message and entities from our own earlier answers leak in.
The rules are line-based and small, in the spirit of talon and email_reply_parser:

* quoted lines (`>`) are dropped wherever they are, so inline and bottom-posted
  replies keep the customer's own lines between the quotes;
* an attribution line ("On … wrote:", also wrapped over up to three lines, and the
  German/French/Spanish/Italian/Dutch/Portuguese/Polish/Russian forms) is dropped with
  its quote; when no `>` quote follows it (Gmail web, some phones), everything from it
  on is history;
* Outlook-style history ("-----Original Message-----", a "From:/Sent:/To:/Subject:"
  block, optionally after a rule line) is unprefixed, so everything from it on goes;
* the signature is cut at "-- ", a mobile footer ("Sent from my iPhone"), a mailing
  list rule, a sign-off followed by a short name block, the sender's own name near the
  end, or a legal/confidentiality disclaimer.

If stripping would leave nothing, the original text is returned: a wrong guess must
never make a customer's mail look empty.
"""

from __future__ import annotations

import re

_QUOTED = re.compile(r"^\s*>")
# `[^:]{0,160}+` is possessive: `[^:]` also takes the whitespace that `\s*` wants, and
# letting the two trade it back and forth made each "schrieb" cost 160 × the spaces after it.
_WROTE_END = re.compile(
    r"(?:\bwrote|\bschrieb\b[^:]{0,160}+|\ba\s+écrit|\bescribió|\bha\s+scritto|"
    r"\bschreef\b[^:]{0,160}+|\bescreveu|\bnapisał\w*|написал\w*|\bskrev|\bkirjoitti)"
    r"\s*:\s*$",
    re.IGNORECASE,
)
_ATTRIBUTION_START = re.compile(r"^\s*(?:On|Am|Le|El|Il|Op|Em|W\s+dniu|Den|På)\s", re.IGNORECASE)
_ORIGINAL_MESSAGE = re.compile(
    r"^\s*-{2,}\s*(?:Original Message|Ursprüngliche Nachricht|Message d'origine|"
    r"Mensaje original|Messaggio originale|Oorspronkelijk bericht|Mensagem original|"
    r"Oryginalna wiadomość|Исходное сообщение)\s*-{2,}\s*$",
    re.IGNORECASE,
)
_FROM = re.compile(r"^\s*\*?(?:From|Von|De|Da|Van|Från|Od|От)\s*:\*?\s*\S", re.IGNORECASE)
_HEADER_FIELD = re.compile(
    r"^\s*\*?(?:Sent|Date|To|Cc|Subject|Gesendet|Datum|An|Betreff|Envoyé|À|Objet|Enviado|"
    r"Fecha|Para|Asunto|Inviato|Oggetto|Verzonden|Aan|Onderwerp|Skickat|Ämne|Data|Temat|"
    r"Отправлено|Кому|Тема)\s*:",
    re.IGNORECASE,
)
_FROM_SENT_ONE_LINE = re.compile(r"^\s*\*?From:\*?\s.+\s\*?Sent:\*?\s", re.IGNORECASE)
# Matched against the rstripped end of a line (see `_ends_with_address`). The bare local
# part starts a token and holds no "@", so each token is tried once: with a search from
# every "@" against every later "@", a line of "a@a@a@…" cost 0.15 s.
_ADDRESS_COLON = re.compile(r"(?:<[^<>\s@]+@[^<>\s]+>|(?<![^\s<>])[^\s<>@]+@[^\s<>]+)\W{0,3}:$")
_SPACE_RUNS = re.compile(r"(\s+)")
_RULE = re.compile(r"^\s*(?:[-_*=]\s?){5,}\s*$")

_DELIMITER = re.compile(r"^(?:--|__|—)\s*$")
_MOBILE = re.compile(
    r"^\s*(?:Sent (?:from|with|via) (?:my |a |an )?[\w'&.-]+(?: [\w'&.-]+){0,5}|"
    r"Get Outlook for \w+|Envoyé de mon \w+(?: \w+){0,3}|Von meinem \w+(?: \w+){0,3} gesendet|"
    r"Gesendet von meinem \w+(?: \w+){0,3}|Enviado desde mi \w+(?: \w+){0,3}|"
    r"Inviato da(?:l mio)? \w+(?: \w+){0,3})\s*$",
    re.IGNORECASE,
)
_DASH_NAME = re.compile(r"^\s*-\s?[A-Z][\w.'-]*(?:\s+[A-Z][\w.'-]*){0,3}\s*$")
# `\s*+(?:[,.!]\s*)?$`, not `\s*[,.!]?\s*$`: two optional whitespace runs side by side split
# a long run every possible way, so "Thanks", 40,000 spaces and a word took 5 s.
_SIGN_OFF = re.compile(
    r"^\s*(?:(?:best|kind|warm|warmest|many)\s+(?:regards|wishes|thanks)|regards|cheers|"
    r"thanks(?:\s+(?:again|a lot|in advance|so much))?|thank you(?:\s+(?:again|in advance|"
    r"very much|so much))?|many thanks|thx|sincerely|yours(?:\s+(?:truly|sincerely))?|best|br|"
    r"mit freundlichen grüßen|freundliche grüße|viele grüße|beste grüße|liebe grüße|grüße|"
    r"gruß|cordialement|bien à vous|salutations|bien cordialement|saludos|un saludo|"
    r"atentamente|cordiali saluti|saluti|met vriendelijke groet|groeten)\s*+(?:[,.!]\s*)?$",
    re.IGNORECASE,
)
_DISCLAIMER_STRONG = re.compile(
    r"intended (?:solely )?(?:only )?for the (?:use of the )?(?:addressee|intended recipient|"
    r"person or entity)|if you (?:have )?received this (?:e-?mail|message|communication|"
    r"transmission) in error|(?:not|are not) the intended recipient|"
    r"diese e-?mail enthält vertrauliche|ce message (?:et toutes les pièces jointes )?"
    r"(?:est|sont) confidenti",
    re.IGNORECASE,
)
_DISCLAIMER_WEAK = re.compile(
    r"confidential|privileged|disclaimer|unauthori[sz]ed|prohibited|vertraulich|confidentiel",
    re.IGNORECASE,
)

_MAX_SIGNATURE_LINES = 20
_MAX_NAME_BLOCK_LINES = 6


def strip_reply(text: str, *, sender_name: str = "") -> str:
    """The newly written part of a reply; the original text if nothing would remain."""
    unquoted = _strip_quotes(text)
    reply = strip_signature(unquoted, sender_name=sender_name) if unquoted else ""
    return reply if reply.strip() else text


def strip_quotes(text: str) -> str:
    """`text` without quoted history (quoted lines, attributions, Outlook blocks)."""
    return _strip_quotes(text) or text


def _strip_quotes(text: str) -> str:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(_unquoted_lines(lines)).strip()


def _unquoted_lines(lines: list[str]) -> list[str]:
    keep: list[str] = []
    drop_until = -1
    for i, line in enumerate(lines):
        if i <= drop_until or _QUOTED.match(line):
            continue
        header = _attribution(lines, i)
        if header is not None:
            start, end = header
            del keep[len(keep) - (i - start) :]
            if _next_is_quote(lines, end + 1):
                drop_until = end
                continue
            break
        if (
            _ORIGINAL_MESSAGE.match(line)
            or _FROM_SENT_ONE_LINE.match(line)
            or _is_from_block(lines, i)
        ):
            while keep and (not keep[-1].strip() or _RULE.match(keep[-1])):
                keep.pop()
            break
        keep.append(line)
    return keep


def _attribution(lines: list[str], i: int) -> tuple[int, int] | None:
    """(first, last) line of an attribution that ends on line i, else None."""
    line = lines[i]
    # Both forms end in a colon: the cheap test first, as almost no line does.
    if len(line) > 400 or not line.rstrip().endswith(":"):
        return None
    if not _WROTE_END.search(line):
        # "<date>, <name> <address>:" right above a quote (Yandex, Mail.ru, some phones).
        if _ends_with_address(line) and re.search(r"\d", line) and _next_is_quote(lines, i + 1):
            return i, i
        return None
    start = i
    # Wrapped attributions: walk up over at most two non-blank lines to the "On".
    for back in (1, 2):
        j = i - back
        if j < 0 or not lines[j].strip() or _QUOTED.match(lines[j]):
            break
        if _ATTRIBUTION_START.match(lines[j]):
            start = j
            break
    if start == i and not _ATTRIBUTION_START.match(line):
        # No "On …" start: accept a wrapped line above that carries a date or address.
        j = i - 1
        if j >= 0 and lines[j].strip() and re.search(r"\d|@|<", lines[j]):
            start = j
    return start, i


def _ends_with_address(line: str) -> bool:
    """The line ends in an address, at most three non-word characters and a colon."""
    # The address is one token and `\W{0,3}` spans at most three whitespace characters,
    # so the last four tokens (with the whitespace between them kept) hold any match.
    tail = "".join(_SPACE_RUNS.split(line.rstrip())[-7:])
    return _ADDRESS_COLON.search(tail) is not None


def _next_is_quote(lines: list[str], start: int) -> bool:
    # Indexes, not `lines[start:]`: a copy of the rest per attribution-like line made a
    # body of many short "<date> <address>:" lines quadratic.
    for j in range(start, len(lines)):
        if lines[j].strip():
            return bool(_QUOTED.match(lines[j]))
    return True


def _is_from_block(lines: list[str], i: int) -> bool:
    """A block of quoted-message headers starts here: From plus two more fields, any order."""
    if not (_FROM.match(lines[i]) or _HEADER_FIELD.match(lines[i])):
        return False
    window = lines[i : i + 7]
    has_from = any(_FROM.match(line) for line in window)
    fields = sum(1 for line in window if _HEADER_FIELD.match(line) or _FROM.match(line))
    return has_from and fields >= 3


def strip_signature(text: str, *, sender_name: str = "") -> str:
    """`text` without a trailing signature, mobile footer, sign-off or disclaimer."""
    lines = text.split("\n")
    for _ in range(6):
        cut = _disclaimer_cut(lines)
        if cut is None:
            cut = _signature_cut(lines, sender_name)
        if cut is None or cut == 0:
            break
        lines = lines[:cut]
        while lines and not lines[-1].strip():
            lines.pop()
    return "\n".join(lines).strip()


def _signature_cut(lines: list[str], sender_name: str) -> int | None:
    names = _name_forms(sender_name)
    # Every rule needs a short tail after the cut, so only the last lines are candidates.
    tail: list[str] = []
    first = len(lines)
    while first > 1 and len(tail) <= _MAX_SIGNATURE_LINES:
        first -= 1
        if lines[first].strip():
            tail.append(lines[first])
    nonblank_after = len([x for x in lines[first:] if x.strip()])
    for i in range(first, len(lines)):
        line = lines[i]
        if not line.strip():
            continue
        nonblank_after -= 1
        after = tail[:nonblank_after][::-1] if nonblank_after > 0 else []
        if _DELIMITER.match(line) and len(after) <= _MAX_SIGNATURE_LINES:
            return i
        if _MOBILE.match(line) and len(after) <= 5:
            return i
        if _RULE.match(line) and len(after) <= 12 and _short(after):
            return i
        short_tail = len(after) <= _MAX_NAME_BLOCK_LINES and _short(after)
        if short_tail and (_SIGN_OFF.match(line) or (_DASH_NAME.match(line) and len(after) <= 3)):
            return i
        if short_tail and names and len(line) <= 60 and line.strip().lower() in names:
            return i
    return None


def _name_forms(sender_name: str) -> set[str]:
    name = " ".join(sender_name.replace('"', " ").split())
    if not name or "@" in name:
        return set()
    forms = {name.lower()}
    first = name.split()[0]
    if len(first) > 1:
        forms.add(first.lower())
    return forms


def _short(lines: list[str]) -> bool:
    return all(len(line.strip()) <= 72 for line in lines)


def _disclaimer_cut(lines: list[str]) -> int | None:
    """Start of the first paragraph (after some text) that reads as a legal disclaimer."""
    start = 0
    for i in range(len(lines) + 1):
        if i < len(lines) and lines[i].strip():
            continue
        paragraph = " ".join(lines[start:i])
        if start > 0 and paragraph and _is_disclaimer(paragraph):
            return start
        start = i + 1
    return None


_DISCLAIMER_HINTS = (
    "confidential",
    "privileged",
    "intended",
    "disclaimer",
    "unauthori",
    "prohibited",
    "vertraulich",
    "confidenti",
    "in error",
)


def _is_disclaimer(paragraph: str) -> bool:
    lowered = paragraph.lower()
    if not any(hint in lowered for hint in _DISCLAIMER_HINTS):
        return False  # the cheap test first: almost no paragraph is a disclaimer
    if _DISCLAIMER_STRONG.search(paragraph):
        return True
    return len({m.group(0).lower() for m in _DISCLAIMER_WEAK.finditer(paragraph)}) >= 2
