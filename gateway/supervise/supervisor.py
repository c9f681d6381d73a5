"""Start the runner processes, restart the ones that die, stop them all on the way out.

Children are whole new interpreters (`subprocess`, not `fork`): the supervisor already
runs the front door's threads, and a fork would copy their locks mid-use. Each child
gets its own process group, so a Ctrl-C at the terminal reaches only the supervisor,
which then stops the children in order; and a stdin pipe whose end of file tells it
that the supervisor is gone (see `child`).

A child that dies is restarted after a backoff that doubles with each death in a row
(1 s up to 60 s; a child that ran a minute starts again from 1 s). Before that, what
it held is handed back at once (`storage.workers.reclaim_dead`): a dead process cannot
finish its claims, so they need not wait `stale_after_seconds`. Every start and exit
is logged and written to the `WorkerProcess` table, which `supportgate status` shows.

Bookkeeping failures (a locked or full database) are logged, never fatal: the
supervisor also carries the front door, which must keep answering.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ParamSpec, TypeVar

from sqlalchemy.engine import Engine

from storage.models import utcnow
from storage.workers import WorkerProcess, forget_host, reclaim_dead, record_worker

log = logging.getLogger("supportgate.supervisor")

BACKOFF_FIRST = 1.0
BACKOFF_MAX = 60.0
# A child that ran this long before dying had been healthy: its next restart is quick.
STABLE_AFTER = 60.0
STOP_TIMEOUT = 15.0

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class WorkerSpec:
    """One slot: its name in logs and status, its role, and the command it runs."""

    name: str
    role: str
    argv: tuple[str, ...]


@dataclass
class Child:
    spec: WorkerSpec
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    started_at: datetime | None = None
    restarts: int = 0
    deaths_in_row: int = 0
    restart_at: float | None = None
    last_exit: str | None = None
    last_exit_at: datetime | None = None
    last_pid: int | None = None


def restart_delay(deaths_in_row: int) -> float:
    """1 s after the first death in a row, doubling, at most a minute."""
    return min(BACKOFF_FIRST * 2 ** max(deaths_in_row - 1, 0), BACKOFF_MAX)


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


class Supervisor:
    """Owns the children of `specs`; call `start`, then `tick` often, then `stop`."""

    def __init__(
        self,
        engine: Engine,
        specs: Sequence[WorkerSpec],
        *,
        max_attempts: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.children = [Child(spec) for spec in specs]
        self.max_attempts = max_attempts
        self.clock = clock
        self.host = socket.gethostname()
        self.stopping = False

    def start(self) -> None:
        self._quietly(
            "forget the previous supervisor's workers", forget_host, self.engine, host=self.host
        )
        for child in self.children:
            self._spawn(child)

    def tick(self) -> None:
        """Notice exits and start the children whose backoff has passed."""
        now = self.clock()
        for child in self.children:
            if child.proc is not None and child.proc.poll() is not None:
                self._exited(child, now)
            elif child.proc is None and child.restart_at is not None and now >= child.restart_at:
                child.restarts += 1
                self._spawn(child)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM every child, wait for it to hand back its claims, SIGKILL stragglers."""
        self.stopping = True
        running = [c for c in self.children if c.proc is not None and c.proc.poll() is None]
        for child in running:
            assert child.proc is not None
            child.proc.terminate()
        deadline = self.clock() + timeout
        for child in running:
            assert child.proc is not None
            try:
                child.proc.wait(timeout=max(deadline - self.clock(), 0.1))
            except subprocess.TimeoutExpired:
                log.warning(
                    "%s (pid %d) did not stop in time; killing it", child.spec.name, child.proc.pid
                )
                child.proc.kill()
                child.proc.wait()
        for child in self.children:
            if child.proc is not None:
                self._exited(child, self.clock())
            self._record(child, "stopped")

    def _spawn(self, child: Child) -> None:
        child.restart_at = None
        try:
            child.proc = subprocess.Popen(child.spec.argv, stdin=subprocess.PIPE, process_group=0)
        except OSError as exc:
            log.error("cannot start %s: %s", child.spec.name, exc)
            child.last_exit, child.last_exit_at = f"cannot start: {exc}", utcnow()
            self._schedule_restart(child, self.clock())
            return
        child.started, child.started_at = self.clock(), utcnow()
        child.last_pid = child.proc.pid
        log.info("started %s (pid %d)", child.spec.name, child.proc.pid)
        self._record(child, "running")

    def _exited(self, child: Child, now: float) -> None:
        proc = child.proc
        assert proc is not None and proc.returncode is not None
        child.proc = None
        if proc.stdin is not None:
            proc.stdin.close()
        child.last_exit, child.last_exit_at = describe_exit(proc.returncode), utcnow()
        reclaimed = self._quietly(
            f"hand back what {child.spec.name} held",
            reclaim_dead,
            self.engine,
            worker_prefix=f"{self.host}:{proc.pid}:",
            max_attempts=self.max_attempts,
        )
        if reclaimed and any(reclaimed):
            log.warning(
                "%s (pid %d) left claims: %d requeued, %d shunted, %d sends uncertain",
                child.spec.name,
                proc.pid,
                *reclaimed,
            )
        if self.stopping:
            log.info("%s (pid %d) stopped: %s", child.spec.name, proc.pid, child.last_exit)
            return
        if now - child.started >= STABLE_AFTER:
            child.deaths_in_row = 0
        self._schedule_restart(child, now)
        assert child.restart_at is not None
        log.warning(
            "%s (pid %d) exited: %s; restarting in %.0f s",
            child.spec.name,
            proc.pid,
            child.last_exit,
            child.restart_at - now,
        )

    def _schedule_restart(self, child: Child, now: float) -> None:
        child.deaths_in_row += 1
        child.restart_at = now + restart_delay(child.deaths_in_row)
        self._record(child, "restarting")

    def _record(self, child: Child, state: str) -> None:
        row = WorkerProcess(
            host=self.host,
            name=child.spec.name,
            role=child.spec.role,
            pid=child.last_pid,
            state=state,
            restarts=child.restarts,
            started_at=child.started_at,
            last_exit=child.last_exit,
            last_exit_at=child.last_exit_at,
            supervisor_pid=os.getpid(),
        )
        self._quietly(f"record {child.spec.name}", record_worker, self.engine, row)

    def _quietly(
        self, what: str, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs
    ) -> R | None:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            log.error("could not %s: %s: %s", what, type(exc).__name__, exc)
            return None
