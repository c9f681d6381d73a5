"""Candidate incidents: tickets from several customers that share a failure in a burst.

An outage shows up as many customers writing about the same failure at once: the same
log signature, the same failing host or error code. Ordinary traffic shares these too
(a 401 here and there, the API's own hostname), so sharing is not enough: a key's
tickets must come in a burst that its own history does not explain. For each key we
form bursts at three time scales (tickets within 90 minutes, 6 hours and a day of each
other, so a sharp outage and a slow certificate expiry are both seen) and score each
burst with the Poisson chance of that many customers in that span given the key's
usual share of all tickets (so a busy afternoon is not a burst of everything).
Bursts whose tickets overlap merge into one candidate. Weak keys (a region, a status
code) never start a candidate but bring in tickets of the same span that say nothing
more specific ("is your API down?"); the intent alone never does.

Pure functions over plain facts (`Sighting`s); storage reads them, the CLI and the
review UI present the result.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from nlp.incidents.keys import FAILURE_INTENTS, SEEDING, STRONG, WEAK, Key, Sighting

SCALES = (timedelta(minutes=90), timedelta(hours=6), timedelta(hours=24))


@dataclass(frozen=True, slots=True)
class Evidence:
    key: Key
    tickets: int
    expected: float  # tickets the key's history predicts in the span
    surprise: float  # -log10 of the Poisson tail probability


@dataclass(frozen=True, slots=True)
class Candidate:
    ref: str  # "ERROR_CODE:e_upstream": the best key, stable while the incident lasts
    ticket_ids: tuple[int, ...]
    customers: tuple[str, ...]
    start: datetime
    end: datetime
    evidence: tuple[Evidence, ...]
    times: tuple[datetime, ...]  # every mail of its tickets in the span, for a sparkline

    @property
    def keys(self) -> frozenset[Key]:
        return frozenset(e.key for e in self.evidence)

    def describe(self) -> str:
        what = ", ".join(f"{k}={v}" for (k, v) in (e.key for e in self.evidence[:3]))
        return (
            f"{len(self.customers)} customers, {len(self.ticket_ids)} tickets "
            f"{self.start:%a %H:%M}–{self.end:%a %H:%M} UTC share {what}"
        )


def poisson_surprise(observed: int, expected: float) -> float:
    """-log10 P(X >= observed) for X ~ Poisson(expected)."""
    if observed <= 0:
        return 0.0
    expected = max(expected, 1e-9)
    term = math.exp(-expected)
    below = 0.0
    for i in range(observed):
        below += term
        term *= expected / (i + 1)
    tail = max(1.0 - below, 0.0)
    if tail < 1e-12:  # cancellation: sum the tail directly instead
        tail = sum(
            math.exp(-expected + k * math.log(expected) - math.lgamma(k + 1))
            for k in range(observed, observed + 60)
        )
    return -math.log10(max(tail, 1e-300))


@dataclass
class _Burst:
    key: Key
    tickets: set[int]
    customers: set[str]
    start: datetime
    end: datetime
    evidence: Evidence


def find_candidates(
    sightings: Sequence[Sighting],
    *,
    since: datetime,
    min_customers: int = 3,
    min_surprise: float = 5.0,
) -> list[Candidate]:
    """Candidate incidents among tickets first seen at or after `since`; the sightings
    before `since` are the history that tells a burst from a key's ordinary rate."""
    if not sightings:
        return []
    ticket_at: dict[int, datetime] = {}
    ticket_keys: dict[int, set[Key]] = defaultdict(set)
    ticket_customer: dict[int, str] = {}
    for s in sightings:
        if s.ticket_id not in ticket_at or s.at < ticket_at[s.ticket_id]:
            ticket_at[s.ticket_id] = s.at
            ticket_customer[s.ticket_id] = s.customer
        ticket_keys[s.ticket_id] |= s.keys
    traffic = sorted(ticket_at.values())
    by_key: dict[Key, list[int]] = defaultdict(list)
    for tid, keys in ticket_keys.items():
        for key in keys:
            by_key[key].append(tid)
    bursts: list[_Burst] = []
    for key, tids in by_key.items():
        if key[0] not in SEEDING:
            continue
        # A burst's customers are some of its key's: a key that fewer customers name
        # than a candidate needs can start none (most keys: one mail's IP, one host).
        if len(tids) < min_customers or len({ticket_customer[t] for t in tids}) < min_customers:
            continue
        tids.sort(key=lambda t: ticket_at[t])
        bursts.extend(_bursts(key, tids, ticket_at, ticket_customer, traffic, since))
    bursts = [
        b
        for b in bursts
        if len(b.customers) >= min_customers and b.evidence.surprise >= min_surprise
    ]
    groups = _merge(bursts)
    out = [
        _candidate(group, ticket_at, ticket_keys, ticket_customer, sightings, by_key)
        for group in groups
    ]
    out.sort(key=lambda c: (-len(c.customers), -len(c.ticket_ids), c.start))
    return out


def _bursts(
    key: Key,
    tids: list[int],
    ticket_at: dict[int, datetime],
    ticket_customer: dict[int, str],
    traffic: list[datetime],
    since: datetime,
) -> list[_Burst]:
    """The most surprising burst of `key` per scale that reaches past `since`."""
    found: list[_Burst] = []
    for gap in SCALES:
        best: _Burst | None = None
        run: list[int] = []
        for tid in [*tids, -1]:
            if tid != -1 and (not run or ticket_at[tid] - ticket_at[run[-1]] <= gap):
                run.append(tid)
                continue
            burst = _score(key, run, ticket_at, ticket_customer, len(tids), traffic, gap)
            # A run much longer than its scale is a steady trickle, not a burst.
            steady = ticket_at[run[-1]] - ticket_at[run[0]] > 2 * gap
            if (
                not steady
                and ticket_at[run[-1]] >= since
                and (best is None or burst.evidence.surprise > best.evidence.surprise)
            ):
                best = burst
            run = [tid]
        if best is not None:
            found.append(best)
    return found


def _score(
    key: Key,
    run: list[int],
    ticket_at: dict[int, datetime],
    ticket_customer: dict[int, str],
    total: int,
    traffic: list[datetime],
    gap: timedelta,
) -> _Burst:
    """How surprising `run` is: the key's usual share of all tickets, applied to the
    tickets of the burst's span (so busy afternoons and quiet nights are both fair)."""
    start, end = ticket_at[run[0]], ticket_at[run[-1]]
    customers = {ticket_customer[t] for t in run}
    inside = bisect_right(traffic, end + gap / 2) - bisect_left(traffic, start - gap / 2)
    outside = len(traffic) - inside
    if outside < len(traffic) / 2:
        # Most of the history is this "burst": that is the key's ordinary rate.
        return _Burst(key, set(run), customers, start, end, Evidence(key, len(run), 0.0, 0.0))
    # The key's share outside this burst, with half a ticket of prior for unseen keys.
    expected = (total - len(run) + 0.5) / outside * max(inside, len(run))
    evidence = Evidence(key, len(run), expected, poisson_surprise(len(customers), expected))
    return _Burst(key, set(run), customers, start, end, evidence)


def _merge(bursts: list[_Burst]) -> list[list[_Burst]]:
    """Union bursts whose tickets overlap by half of the smaller one."""
    parent = list(range(len(bursts)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(bursts):
        for j in range(i + 1, len(bursts)):
            b = bursts[j]
            shared = len(a.tickets & b.tickets)
            if shared and shared * 2 >= min(len(a.tickets), len(b.tickets)):
                parent[root(i)] = root(j)
    groups: dict[int, list[_Burst]] = defaultdict(list)
    for i, burst in enumerate(bursts):
        groups[root(i)].append(burst)
    return list(groups.values())


def _candidate(
    group: list[_Burst],
    ticket_at: dict[int, datetime],
    ticket_keys: dict[int, set[Key]],
    ticket_customer: dict[int, str],
    sightings: Sequence[Sighting],
    by_key: dict[Key, list[int]],
) -> Candidate:
    tickets: set[int] = set().union(*(b.tickets for b in group))
    start = min(b.start for b in group)
    end = max(b.end for b in group)
    # Weak keys most of the tickets share, and the symptoms that burst, bring in quiet
    # tickets of the same span; the intent alone never does (it is too common).
    weak_counts: dict[Key, int] = defaultdict(int)
    for tid in tickets:
        for key in ticket_keys[tid]:
            if key[0] in WEAK:
                weak_counts[key] += 1
    shared_weak = {
        k
        for k, n in weak_counts.items()
        if n * 2 >= len(tickets) and (k[0] != "intent" or k[1] in FAILURE_INTENTS)
    }
    joining = {k for k in shared_weak if k[0] != "intent"}
    joining |= {b.key for b in group if b.key[0] == "symptom"}
    slack = timedelta(minutes=30)
    for key in joining:
        for tid in by_key[key]:
            if start - slack <= ticket_at[tid] <= end + slack and not _strong(ticket_keys[tid]):
                tickets.add(tid)
    evidence = {b.key: b.evidence for b in sorted(group, key=lambda b: b.evidence.surprise)}
    ranked = sorted(evidence.values(), key=lambda e: (-e.tickets, -e.surprise, e.key))
    ranked += [Evidence(k, weak_counts[k], 0.0, 0.0) for k in sorted(shared_weak)]
    times = tuple(sorted(s.at for s in sightings if s.ticket_id in tickets and s.at >= start))
    best = ranked[0].key
    return Candidate(
        ref=f"{best[0]}:{best[1]}",
        ticket_ids=tuple(sorted(tickets)),
        customers=tuple(sorted({ticket_customer[t] for t in tickets})),
        start=min(start, *(ticket_at[t] for t in tickets)),
        end=max(end, *(ticket_at[t] for t in tickets)),
        evidence=tuple(ranked),
        times=times,
    )


def _strong(keys: Iterable[Key]) -> bool:
    return any(k[0] in STRONG for k in keys)


def split_known(
    candidates: Sequence[Candidate], declared: dict[int, set[int]]
) -> tuple[list[Candidate], dict[int, list[int]]]:
    """Candidates not yet declared, and for each declared incident (id → its tickets) the
    tickets of a matching candidate it does not have yet: attach suggestions."""
    fresh: list[Candidate] = []
    suggest: dict[int, list[int]] = defaultdict(list)
    for cand in candidates:
        tickets = set(cand.ticket_ids)
        best = max(declared.items(), key=lambda kv: len(kv[1] & tickets), default=None)
        if best is None or len(best[1] & tickets) * 2 < len(tickets):
            fresh.append(cand)
            continue
        suggest[best[0]].extend(sorted(tickets - best[1]))
    return fresh, dict(suggest)
