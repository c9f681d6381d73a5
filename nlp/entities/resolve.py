"""What happens to spans after the main regex: neighbours, overlaps, comparable forms.

The single alternation finds one entity per match and never overlapping ones. A few
entities are only recognisable by what stands next to another entity, which one
match cannot report twice: the status in "AccessDenied (403)" belongs to the code
before it, and the word after a syslog timestamp ("Nov 27 10:01:02 web-3 sshd[42]:")
is the host that logged the line. Those are found here from the spans already known.
Overlaps (phrases against regex spans) are then resolved like
`spacy.util.filter_spans`, and `normalise`/`dedupe` give the comparable forms used to
merge entities across a message.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from nlp.types import Entity

Span = tuple[int, int, str]

_STATUS_AFTER_CODE = re.compile(r"\s{0,2}[(\[]\s{0,2}(?:HTTP\s{0,2})?([1-5]\d\d)\s{0,2}[)\]]")
_CODE_LABELS = frozenset({"ERROR_CODE", "EXCEPTION"})
# "<syslog or ISO timestamp> <host> <program>[pid]:" — the host sits right after it.
_SYSLOG_HOST = re.compile(
    r"[ \t]{1,3}([A-Za-z][A-Za-z0-9-]{0,62})[ \t]{1,3}[\w./-]{1,64}(?:\[\d{1,9}\])?:"
)


def neighbour_spans(text: str, spans: list[Span]) -> list[Span]:
    """Entities that only the span before them makes recognisable (see module doc)."""
    extra: list[Span] = []
    for start, end, label in spans:
        if label in _CODE_LABELS:
            match = _STATUS_AFTER_CODE.match(text, end)
            if match:
                extra.append((match.start(1), match.end(1), "HTTP_STATUS"))
        elif label == "TIMESTAMP" and (start == 0 or text[start - 1] in "\n["):
            match = _SYSLOG_HOST.match(text, end + (text[end : end + 1] == "]"))
            if match:
                extra.append((match.start(1), match.end(1), "HOSTNAME"))
    return extra


def resolve(spans: list[Span]) -> list[Span]:
    """Longest span wins, then the earliest; the same rule as spacy.util.filter_spans."""
    if len(spans) < 2:
        return spans
    taken: list[Span] = []
    used: set[int] = set()
    for start, end, label in sorted(spans, key=lambda s: (-(s[1] - s[0]), s[0])):
        if any(i in used for i in range(start, end)):
            continue
        used.update(range(start, end))
        taken.append((start, end, label))
    return sorted(taken)


_CASELESS = frozenset(
    {"HOSTNAME", "EMAIL", "CLOUD_REGION", "PRODUCT", "SERVICE", "CVE", "URL", "K8S_RESOURCE"}
)


def normalise(entity: Entity) -> str:
    """The comparable form of an entity's text (used to dedupe and to fill drafts)."""
    text = entity.text.strip().rstrip(".")
    if entity.label == "IP":
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            return text
    if entity.label == "URL":
        scheme, sep, rest = text.partition("://")
        host, slash, path = rest.partition("/")
        return f"{scheme.lower()}{sep}{host.lower()}{slash}{path}" if sep else text.lower()
    if entity.label in _CASELESS:
        return text.lower()
    return " ".join(text.split())


def dedupe(entities: Iterable[Entity]) -> list[Entity]:
    """First occurrence of each (source, label, normalised text), in input order."""
    seen: set[tuple[str, str, str]] = set()
    out: list[Entity] = []
    for entity in entities:
        key = (entity.source, entity.label, normalise(entity))
        if key not in seen:
            seen.add(key)
            out.append(entity)
    return out
