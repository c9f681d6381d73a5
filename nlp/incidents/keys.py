"""What an incident is recognised by: the keys a mail names, strong and weak.

A strong key identifies a failing thing (a log signature, a host, an error code): it
can start a candidate incident and attach a new ticket to a declared one. A weak key (a
region, a status code, the intent) is shared by too much ordinary mail to do either,
but it brings quiet tickets ("is your API down?") into a burst that strong keys found.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

Key = tuple[str, str]  # (kind, value): ("signature", "3f2a…"), ("ERROR_CODE", "e_upstream")

STRONG = frozenset(
    {"signature", "HOSTNAME", "IP", "ERROR_CODE", "EXCEPTION", "K8S_RESOURCE", "CVE", "URL"}
)
WEAK = frozenset({"CLOUD_REGION", "HTTP_STATUS", "PRODUCT", "SERVICE", "intent"})
# A symptom in the customer's words ("certificate has expired", "connection refused"):
# specific enough to start a candidate when it bursts, too coarse to attach a ticket.
SEEDING = STRONG | {"symptom"}
# Intents that say "something of yours is broken"; the others never join an incident.
FAILURE_INTENTS = frozenset(
    {"outage_report", "bug_report", "performance", "account_login", "access_permissions"}
)
_SYMPTOMS = {
    name: re.compile(pattern)  # matched against lower-cased text
    for name, pattern in {
        "certificate expired": r"certificate (?:has )?expired|expired (?:ssl |tls )?cert"
        r"|cert_has_expired",
        "certificate not trusted": r"certificate[_ ]verify[_ ]failed|unable to verify\b"
        r"|self[- ]signed certificate|certificate (?:is )?not trusted",
        "tls handshake failure": r"handshake (?:failed|failure|error)|ssl alert|tls error",
        "connection refused": r"connection refused|econnrefused",
        "connection reset": r"connection reset|econnreset|broken pipe",
        "timeout": r"timed out|time-?out|etimedout|deadline exceeded",
        "name resolution": r"nxdomain|servfail|no such host|could not resolve|name or service",
        "service unavailable": r"service unavailable|bad gateway|\b50[234]\b|upstream",
        "down": r"\b(?:is|are|seems?|looks?|went|goes) down\b|\boutage\b|unreachable"
        r"|not (?:loading|responding)",
        "rate limited": r"rate[- ]limit|too many requests|\b429\b",
        "disk full": r"no space left|disk (?:is )?full|quota exceeded on disk",
        "out of memory": r"out of memory|oomkilled|\boom\b",
    }.items()
}


@dataclass(frozen=True, slots=True)
class Sighting:
    """One inbound mail: its ticket, customer, own time and the keys it names."""

    ticket_id: int
    customer: str  # the address; a customer is one address, a company may have several
    at: datetime
    keys: frozenset[Key] = frozenset()


def key_of(label: str, text: str) -> Key | None:
    """The grouping key of an entity, or None when it identifies nothing shared."""
    value = " ".join(text.split()).lower()
    if not value or (label not in STRONG and label not in WEAK):
        return None
    return (label, value[:200])


def sighting(
    ticket_id: int,
    customer: str,
    at: datetime,
    entities: Iterable[tuple[str, str]],
    signatures: Iterable[str],
    intent: str | None,
    text: str = "",
    known: Iterable[Sequence[str]] | None = None,
) -> Sighting:
    """A sighting from what analysis stored for one mail (`text`: subject and reply).

    `known`: the mail's keys as `mail_keys` computed them earlier (stored with its
    analysis); then entities, signatures and text are not looked at.
    """
    keys = mail_keys(entities, signatures, text) if known is None else {(k, v) for k, v in known}
    if intent:
        keys.add(("intent", intent))
    return Sighting(ticket_id, customer, at, frozenset(keys))


def mail_keys(
    entities: Iterable[tuple[str, str]], signatures: Iterable[str], text: str = ""
) -> set[Key]:
    """What one mail names, its intent apart: entities, symptoms in `text`, log signatures.

    Stored with the mail's analysis, so that finding candidates does not scan the text again.
    """
    keys = {k for label, value in entities if (k := key_of(label, value))}
    keys |= symptoms(text)
    keys |= {("signature", s) for s in signatures if s}
    return keys


def symptoms(text: str) -> set[Key]:
    """The failure symptoms the customer describes in their own words."""
    # Lower-cased once rather than a case-insensitive search per pattern: over a year of
    # mail that was most of the time candidates took.
    text = text[:5000].lower()
    return {("symptom", name) for name, pattern in _SYMPTOMS.items() if pattern.search(text)}


def matches(incident_keys: Iterable[Key], ticket_keys: Iterable[Key]) -> list[Key]:
    """The strong keys a new ticket shares with a declared incident (its reasons to join)."""
    strong = {k for k in incident_keys if k[0] in STRONG}
    return sorted(strong & set(ticket_keys))
