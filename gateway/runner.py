"""Drive runners: claim → process → finish, or shunt; until idle or until told to stop.

A runner is anything with a `name` and `run_once() -> int` (items handled, 0 = idle).
Runners hold no state between calls that the database does not also hold, so any number
of processes may run them against one database, and a crashed one loses nothing:
`storage.queue.recover_stale` hands its claims back on the next start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Protocol

from sqlalchemy.engine import Engine

from storage.db import checkpoint_wal, is_transient
from storage.queue import recover_stale

log = logging.getLogger(__name__)


class Runner(Protocol):
    name: str

    def run_once(self) -> int: ...


def recover(engine: Engine, *, stale_after_seconds: int, max_attempts: int) -> None:
    requeued, shunted = recover_stale(
        engine, stale_after=timedelta(seconds=stale_after_seconds), max_attempts=max_attempts
    )
    if requeued or shunted:
        log.warning("recovered stale claims: %d requeued, %d shunted", requeued, shunted)


class RecoveryRunner:
    """Hands back claims abandoned by dead runners, every `interval` seconds, and
    checkpoints SQLite's write-ahead log every `checkpoint_interval` seconds.

    Recovery at start-up alone is not enough: a runner restarted seconds after a crash
    finds claims that are not yet stale and would never look at them again. The WAL
    would otherwise grow for as long as the process runs.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        stale_after_seconds: int,
        max_attempts: int,
        interval: float,
        checkpoint_interval: float = 3600.0,
    ) -> None:
        self.name = "recovery"
        self.engine = engine
        self.stale_after_seconds = stale_after_seconds
        self.max_attempts = max_attempts
        self.interval = interval
        self.checkpoint_interval = checkpoint_interval
        self._last = self._checkpointed = time.monotonic()

    def run_once(self) -> int:
        now = time.monotonic()
        if now - self._checkpointed >= self.checkpoint_interval:
            self._checkpointed = now
            result = checkpoint_wal(self.engine)
            if result is not None:
                log.info("WAL checkpoint: busy=%d, log=%d, copied=%d pages", *result)
        if now - self._last < self.interval:
            return 0
        self._last = now
        recover(
            self.engine,
            stale_after_seconds=self.stale_after_seconds,
            max_attempts=self.max_attempts,
        )
        return 0  # never keeps the loop busy


def run_until_idle(runners: Sequence[Runner], *, max_rounds: int = 1_000_000) -> int:
    """Run every runner until a full round handles nothing; return items handled."""
    total = 0
    failures: dict[str, int] = {}
    for _ in range(max_rounds):
        handled = sum(_safe_run(r, failures, time.sleep) for r in runners)
        total += handled
        if handled == 0:
            break
    return total


def run_forever(
    runners: Sequence[Runner], stop: threading.Event, *, poll_interval: float = 1.0
) -> None:
    """Run until `stop` is set, sleeping `poll_interval` whenever a round was idle."""
    failures: dict[str, int] = {}
    while not stop.is_set():
        handled = sum(_safe_run(r, failures, stop.wait) for r in runners)
        if handled == 0:
            stop.wait(poll_interval)


# Back-off after a runner fails: 0.5 s, doubling with each failure in a row, up to 30 s.
FAILURE_BACKOFF = 0.5
FAILURE_BACKOFF_MAX = 30.0


def _safe_run(runner: Runner, failures: dict[str, int], sleep: Callable[[float], object]) -> int:
    # A runner's own code shunts or retries per item; an exception here is an
    # infrastructure problem (database locked, full or gone). Log it, back off more
    # with every failure in a row, and keep the loop alive.
    try:
        handled = runner.run_once()
    except Exception as exc:
        n = failures[runner.name] = failures.get(runner.name, 0) + 1
        delay = min(FAILURE_BACKOFF * 2 ** (n - 1), FAILURE_BACKOFF_MAX)
        if is_transient(exc):
            log.warning(
                "runner %s: temporary failure (%s); retry in %.1f s", runner.name, exc, delay
            )
        else:
            log.exception("runner %s failed; will retry in %.1f s", runner.name, delay)
        sleep(delay)
        return 0
    failures.pop(runner.name, None)
    return handled
