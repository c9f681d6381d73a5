"""What an incident is recognised by: the keys a mail names, strong and weak.

A strong key identifies a failing thing (a log signature, a host, an error code): it
can start a candidate incident and attach a new ticket to a declared one. A weak key (a
region, a status code, the intent) is shared by too much ordinary mail to do either,
but it brings quiet tickets ("is your API down?") into a burst that strong keys found.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

Key = tuple[str, str]  # (kind, value): ("signature", "3f2a…"), ("ERROR_CODE", "e_upstream")

STRONG = frozenset(
    {"signature", "HOSTNAME", "IP", "ERROR_CODE", "EXCEPTION", "K8S_RESOURCE", "CVE", "URL"}
)
WEAK = frozenset({"CLOUD_REGION", "HTTP_STATUS", "PRODUCT", "SERVICE", "intent"})
# Intents that say "something of yours is broken"; the others never join an incident.
FAILURE_INTENTS = frozenset({"outage_report", "bug_report", "performance", "login_issue"})


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
) -> Sighting:
    """A sighting from what analysis stored for one mail."""
    keys = {k for label, text in entities if (k := key_of(label, text))}
    keys |= {("signature", s) for s in signatures if s}
    if intent:
        keys.add(("intent", intent))
    return Sighting(ticket_id, customer, at, frozenset(keys))


def matches(incident_keys: Iterable[Key], ticket_keys: Iterable[Key]) -> list[Key]:
    """The strong keys a new ticket shares with a declared incident (its reasons to join)."""
    strong = {k for k in incident_keys if k[0] in STRONG}
    return sorted(strong & set(ticket_keys))
