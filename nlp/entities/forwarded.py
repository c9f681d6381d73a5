"""The text of forwarded messages inside a mail, for entity extraction.

Customers forward an alert or a colleague's report and add one line of their own
("see below, started at 10:00"). Reply stripping rightly treats everything after the
forward marker as history, so the hosts, error codes and versions that the case is
about would be lost. `forwarded_text` returns just the forwarded parts — without their
From/To/Date header block (addresses and dates of a forward are noise, its Subject is
kept) and without a `>` prefix that some clients add — so the caller can extract
entities from them as a second source beside the reply.
"""

from __future__ import annotations

import re

_MARKER = re.compile(
    r"^\s*(?:-{2,}\s*(?:Forwarded message|Forwarded Message|Original Message|"
    r"Weitergeleitete Nachricht|Ursprüngliche Nachricht|Message transféré|"
    r"Message d'origine|Mensaje reenviado|Mensaje original|Messaggio inoltrato|"
    r"Messaggio originale|Doorgestuurd bericht|Oorspronkelijk bericht|"
    r"Mensagem encaminhada|Mensagem original)\s*-{2,}|"
    r"Begin forwarded message:|Anfang der weitergeleiteten Nachricht:|"
    r"Début du message réexpédié\s?:|Inicio del mensaje reenviado:|"
    r"Inizio messaggio inoltrato:)\s*$",
    re.IGNORECASE,
)
_HEADER = re.compile(
    r"^\*?(?P<name>From|Sent|Date|To|Cc|Bcc|Reply-To|Subject|Von|Gesendet|Datum|An|Betreff|"
    r"De|Envoyé|Date|À|Objet|Para|Enviado|Fecha|Asunto|Da|Inviato|Oggetto|A|Van|Verzonden|"
    r"Aan|Onderwerp)\*?\s*:\*?\s?(?P<value>.*)$",
    re.IGNORECASE,
)
_SUBJECTS = frozenset({"subject", "betreff", "objet", "asunto", "oggetto", "onderwerp"})
_QUOTE = re.compile(r"^\s?>\s?")


def forwarded_text(text: str) -> str:
    """The forwarded parts of `text` (body and subject), blank-line separated; "" if none."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    markers = [i for i, line in enumerate(lines) if _is_marker(line)]
    blocks: list[str] = []
    for n, start in enumerate(markers):
        end = markers[n + 1] if n + 1 < len(markers) else len(lines)
        block = _block_text(_unquoted(lines[start + 1 : end]))
        if block:
            blocks.append(block)
    return "\n\n".join(blocks)


def _is_marker(line: str) -> bool:
    return len(line) <= 120 and _MARKER.match(_QUOTE.sub("", line)) is not None


def _unquoted(lines: list[str]) -> list[str]:
    """Lines without a `>` prefix, when most of the block carries one."""
    filled = [line for line in lines if line.strip()]
    quoted = sum(1 for line in filled if _QUOTE.match(line))
    if filled and quoted * 2 >= len(filled):
        return [_QUOTE.sub("", line, count=1) for line in lines]
    return lines


def _block_text(lines: list[str]) -> str:
    """The block without its leading header fields; a Subject value stays as a line."""
    i = 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    kept: list[str] = []
    in_headers = True
    previous_was_header = False
    for line in lines[i:]:
        if in_headers:
            header = _HEADER.match(line.strip())
            if header:
                if header.group("name").lower() in _SUBJECTS and header.group("value").strip():
                    kept.append(header.group("value").strip())
                previous_was_header = True
                continue
            if previous_was_header and line[:1] in (" ", "\t") and line.strip():
                continue  # a folded header value
            if not line.strip() and kept == [] and previous_was_header:
                in_headers = False
                continue
            in_headers = False
        kept.append(line)
    return "\n".join(kept).strip()
