"""Patterns across tickets and anomalies in volume: pure functions over plain facts.

A rep sees one ticket at a time; an incident shows up as many tickets that share
something — the same failure signature in their logs, the same host or error code —
from different customers, or as more mail than usual. These functions take facts the
gateway reads from storage and return ranked, explainable findings: each cluster names
what the tickets share and which tickets they are, and each anomaly names its count,
the baseline it was compared with, and how far above it was.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

# Entities worth grouping on: they identify a failing thing, not a person or a moment.
CLUSTER_LABELS = frozenset(
    {"HOSTNAME", "IP", "ERROR_CODE", "EXCEPTION", "K8S_RESOURCE", "CLOUD_REGION", "HTTP_STATUS",
     "CVE", "PRODUCT", "SERVICE"}
)  # fmt: skip
# When two findings cover the same tickets, the more specific one names the incident.
_SPECIFICITY = {
    label: rank
    for rank, label in enumerate(
        ("signature", "ERROR_CODE", "EXCEPTION", "HOSTNAME", "K8S_RESOURCE", "IP", "CVE",
         "PRODUCT", "SERVICE", "HTTP_STATUS", "CLOUD_REGION")
    )
}  # fmt: skip
# MAD → standard deviation for normally distributed counts.
_MAD_SCALE = 1.4826


@dataclass(frozen=True, slots=True)
class TicketFacts:
    ticket_id: int
    customer_domain: str
    intent: str | None = None
    signatures: tuple[str, ...] = ()
    entities: tuple[tuple[str, str], ...] = ()  # (label, normalised text)


@dataclass(frozen=True, slots=True)
class Cluster:
    """Tickets that share one thing; `domains` counts distinct customers."""

    kind: str  # "signature" or the entity label
    key: str
    ticket_ids: tuple[int, ...]
    domains: int
    intents: tuple[tuple[str, int], ...] = ()

    @property
    def size(self) -> int:
        return len(self.ticket_ids)

    def describe(self) -> str:
        what = (
            f"log signature {self.key}" if self.kind == "signature" else f"{self.kind} {self.key}"
        )
        customers = f"{self.domains} customer{'s' if self.domains != 1 else ''}"
        return f"{self.size} tickets from {customers} share {what}"


@dataclass(frozen=True, slots=True)
class Anomaly:
    """An hour with more mail than its baseline explains."""

    scope: str  # "all" or an intent
    hour: datetime
    count: int
    baseline: float
    spread: float
    score: float

    def describe(self) -> str:
        return (
            f"{self.scope}: {self.count} messages in the hour from {self.hour:%Y-%m-%d %H:00} UTC, "
            f"usually {self.baseline:.1f} (±{self.spread:.1f}); {self.score:.1f}× the spread above"
        )


@dataclass
class _Group:
    tickets: set[int] = field(default_factory=set)
    domains: set[str] = field(default_factory=set)
    intents: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def find_clusters(
    facts: Iterable[TicketFacts], *, min_tickets: int = 3, min_domains: int = 1
) -> list[Cluster]:
    """Groups of at least `min_tickets` tickets (from `min_domains` customers) that share a
    log signature or an entity value; most customers first, then most tickets."""
    groups: dict[tuple[str, str], _Group] = defaultdict(_Group)
    for fact in facts:
        keys = {("signature", s) for s in fact.signatures if s}
        keys |= {(label, text) for label, text in fact.entities if label in CLUSTER_LABELS and text}
        for key in keys:
            group = groups[key]
            if fact.ticket_id in group.tickets:
                continue
            group.tickets.add(fact.ticket_id)
            group.domains.add(fact.customer_domain)
            if fact.intent:
                group.intents[fact.intent] += 1
    clusters = [
        Cluster(
            kind=kind,
            key=key,
            ticket_ids=tuple(sorted(g.tickets)),
            domains=len(g.domains),
            intents=tuple(sorted(g.intents.items(), key=lambda kv: (-kv[1], kv[0]))),
        )
        for (kind, key), g in groups.items()
        if len(g.tickets) >= min_tickets and len(g.domains) >= min_domains
    ]
    clusters.sort(key=lambda c: (-c.domains, -c.size, _SPECIFICITY.get(c.kind, 99), c.key))
    return _drop_shadowed(clusters)


def _drop_shadowed(clusters: list[Cluster]) -> list[Cluster]:
    """A cluster with exactly the tickets of a better-ranked one adds nothing new."""
    seen: set[tuple[int, ...]] = set()
    kept = []
    for cluster in clusters:
        if cluster.ticket_ids in seen:
            continue
        seen.add(cluster.ticket_ids)
        kept.append(cluster)
    return kept


def hourly_counts(
    times: Iterable[datetime], *, start: datetime, end: datetime
) -> list[tuple[datetime, int]]:
    """Counts per UTC hour from `start` to `end` (inclusive), zeros included."""
    first = start.replace(minute=0, second=0, microsecond=0)
    counts: dict[datetime, int] = defaultdict(int)
    for t in times:
        counts[t.replace(minute=0, second=0, microsecond=0)] += 1
    out = []
    hour = first
    while hour <= end:
        out.append((hour, counts.get(hour, 0)))
        hour += timedelta(hours=1)
    return out


def volume_anomalies(
    series: Sequence[tuple[datetime, int]],
    *,
    scope: str = "all",
    recent_hours: int = 6,
    min_history: int = 24,
    min_count: int = 5,
    threshold: float = 4.0,
) -> list[Anomaly]:
    """Recent hours whose count exceeds the median of all earlier hours by more than
    `threshold` robust spreads (MAD, never below 1 message so quiet queues stay calm).

    Median and MAD rather than mean and standard deviation: one earlier incident must
    not raise the baseline so far that the next one goes unnoticed.
    """
    found = []
    for index in range(max(len(series) - recent_hours, min_history), len(series)):
        history = [count for _, count in series[:index]]
        if len(history) < min_history:
            continue
        baseline = statistics.median(history)
        mad = statistics.median(abs(c - baseline) for c in history) * _MAD_SCALE
        spread = max(mad, 1.0)
        hour, count = series[index]
        score = (count - baseline) / spread
        if count >= min_count and score > threshold:
            found.append(Anomaly(scope, hour, count, baseline, spread, score))
    return found
