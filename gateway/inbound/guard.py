"""Budgets of the SMTP front door: AUTH failures, connections, DATA bytes in memory.

The front door faces whoever can reach the port, so what one client may cost us is
bounded here: password guesses slow down to one a second per client address after a
few failures, connections are capped in total and per address, the bytes of DATA
held in memory are capped in total and per address, and reading large messages is
paced on one clock for all connections. Pure bookkeeping with no
sockets and no clock of its own (callers pass `now`), so it is tested without a
network; `gateway.inbound.session` applies it to aiosmtpd's protocol.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0
    next_allowed: float = 0.0


class AuthThrottle:
    """Per client address: after `free_failures` failed AUTHs, one attempt per `interval`.

    `wait()` says how long the next attempt must wait (0 while under the limit) and
    books the slot, so parallel connections from one address queue up one `interval`
    apart instead of sharing the rate. Failures are forgotten after `forget_after`
    seconds without one; at most `max_clients` addresses are tracked (the oldest go).
    """

    def __init__(
        self,
        *,
        free_failures: int = 5,
        interval: float = 1.0,
        forget_after: float = 900.0,
        max_clients: int = 10_000,
    ) -> None:
        self.free_failures = free_failures
        self.interval = interval
        self.forget_after = forget_after
        self.max_clients = max_clients
        self._by_ip: dict[str, _Failures] = {}

    def _entry(self, ip: str, now: float) -> _Failures | None:
        entry = self._by_ip.get(ip)
        if entry is not None and now - entry.last > self.forget_after:
            del self._by_ip[ip]
            return None
        return entry

    def failures(self, ip: str, now: float) -> int:
        entry = self._entry(ip, now)
        return entry.count if entry else 0

    def wait(self, ip: str, now: float) -> float:
        """Seconds the attempt starting `now` must wait; books the next slot."""
        entry = self._entry(ip, now)
        if entry is None or entry.count < self.free_failures:
            return 0.0
        start = max(now, entry.next_allowed)
        entry.next_allowed = start + self.interval
        return start - now

    def failed(self, ip: str, now: float) -> int:
        """Record a failure; return the address's recent failure count."""
        entry = self._entry(ip, now)
        if entry is None:
            if len(self._by_ip) >= self.max_clients:
                oldest = min(self._by_ip, key=lambda k: self._by_ip[k].last)
                del self._by_ip[oldest]
            entry = self._by_ip[ip] = _Failures(next_allowed=now)
        entry.count += 1
        entry.last = now
        if entry.count >= self.free_failures:
            # The next guess waits a whole interval after this failure, the first too.
            entry.next_allowed = max(entry.next_allowed, now + self.interval)
        return entry.count

    def succeeded(self, ip: str) -> None:
        self._by_ip.pop(ip, None)


class ConnectionLimiter:
    """Open connections, in total and per client address; `acquire` says yes or no."""

    def __init__(self, *, max_total: int, max_per_ip: int) -> None:
        self.max_total = max_total
        self.max_per_ip = max_per_ip
        self._per_ip: Counter[str] = Counter()
        self._total = 0

    @property
    def total(self) -> int:
        return self._total

    def acquire(self, ip: str) -> str | None:
        """Take a slot for `ip`; return None, or why there is none."""
        if self._total >= self.max_total:
            return "too many connections"
        if self._per_ip[ip] >= self.max_per_ip:
            return "too many connections from your address"
        self._total += 1
        self._per_ip[ip] += 1
        return None

    def release(self, ip: str) -> None:
        self._total -= 1
        self._per_ip[ip] -= 1
        if self._per_ip[ip] <= 0:
            del self._per_ip[ip]


class ByteBudget:
    """Bytes of DATA held in memory, capped in total and per client address.

    The per-address share keeps one address (however many connections it opens) from
    spending the whole budget, so mail from everyone else still fits. Thread-safe: the
    SMTP loop takes bytes as lines arrive, and a message's bytes are given back once its
    handler is done with them.
    """

    def __init__(self, limit: int, per_client: int | None = None) -> None:
        self.limit = limit
        self.per_client = limit if per_client is None else min(per_client, limit)
        self._used = 0
        self._by_client: Counter[str] = Counter()
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        return self._used

    def used_by(self, client: str) -> int:
        return self._by_client[client]

    def take(self, n: int, client: str = "") -> bool:
        with self._lock:
            if self._used + n > self.limit:
                return False
            if self._by_client[client] + n > self.per_client:
                return False
            self._used += n
            self._by_client[client] += n
            return True

    def give_back(self, n: int, client: str = "") -> None:
        with self._lock:
            self._used = max(self._used - n, 0)
            left = self._by_client[client] - n
            if left > 0:
                self._by_client[client] = left
            else:
                self._by_client.pop(client, None)


class DataPacer:
    """Paces the bytes of large messages, shared by all connections: `rate` bytes a second.

    The first `free_bytes` of every message pass unpaced, so ordinary mail never waits;
    beyond that, each chunk books the next slot on one shared clock (`burst` seconds of
    credit at most) and its reader waits for it. Reading and checking a line costs the
    event loop CPU, so without this, many connections streaming huge DATA take the loop
    away from everyone else; with it, bulk reading costs at most `rate` bytes a second
    of work, and a client sending ordinary mail meanwhile keeps its pace.
    """

    def __init__(self, rate: float, *, free_bytes: int = 1 << 20, burst: float = 0.25) -> None:
        self.rate = rate
        self.free_bytes = free_bytes
        self.burst = burst
        self._next = float("-inf")

    def delay(self, n: int, now: float) -> float:
        """Book `n` bulk bytes read at `now`; return seconds to wait before reading on."""
        if self.rate <= 0:
            return 0.0
        self._next = max(self._next, now - self.burst) + n / self.rate
        return max(self._next - now, 0.0)
