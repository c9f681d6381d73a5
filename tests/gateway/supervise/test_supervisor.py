"""The supervisor with real child processes and a real SQLite file: a dead child is
restarted after its backoff and recorded, what it held is handed back at once, a stop
ends every child; and the child side lowers its priority and notices its parent's end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from gateway.inbound.ingest import ingest
from gateway.supervise.child import stop_with_parent
from gateway.supervise.supervisor import Supervisor, WorkerSpec, describe_exit, restart_delay
from storage.models import AuditLog, Message
from storage.workers import WorkerProcess, list_workers

ROOT = Path(__file__).resolve().parents[3]
SLEEPER = (sys.executable, "-c", "import time; time.sleep(120)")


def until(predicate: Callable[[], object], sup: Supervisor, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        sup.tick()
        time.sleep(0.05)


def row(engine: Engine, name: str) -> WorkerProcess:
    (found,) = [w for w in list_workers(engine) if w.name == name]
    return found


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_backoff_doubles_up_to_a_minute() -> None:
    assert [restart_delay(n) for n in (1, 2, 3, 4, 7, 8, 50)] == [1, 2, 4, 8, 60, 60, 60]


def test_exits_are_described_for_operators() -> None:
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_exit(3) == "exit code 3"


def test_a_killed_child_is_restarted_and_recorded(engine: Engine) -> None:
    sup = Supervisor(engine, [WorkerSpec("analysis-1", "analysis", SLEEPER)], max_attempts=3)
    sup.start()
    try:
        first = row(engine, "analysis-1")
        assert first.state == "running" and first.restarts == 0 and first.pid
        os.kill(first.pid, signal.SIGKILL)
        until(lambda: row(engine, "analysis-1").state == "restarting", sup)
        waiting = row(engine, "analysis-1")
        assert waiting.last_exit == "killed by SIGKILL" and waiting.restarts == 0
        until(lambda: row(engine, "analysis-1").restarts == 1, sup)
        second = row(engine, "analysis-1")
        assert second.state == "running" and second.pid not in (None, first.pid)
        assert second.last_exit == "killed by SIGKILL" and second.last_exit_at is not None
    finally:
        sup.stop()
    stopped = row(engine, "analysis-1")
    assert stopped.state == "stopped"
    assert stopped.pid is not None and gone(stopped.pid)


def test_what_a_dead_child_claimed_is_handed_back_at_once(engine: Engine, db_path: Path) -> None:
    pk = ingest(engine, b"Message-ID: <a@x>\r\nSubject: hi\r\n\r\nhello", source="t").message_pk
    # A worker that claims the message, then dies before it can finish or hand it back.
    claim_and_die = (
        "import os, signal, socket\n"
        "from storage.db import make_engine\n"
        "from storage.queue import claim_messages\n"
        f"engine = make_engine('sqlite:///{db_path}')\n"
        "worker = f'{socket.gethostname()}:{os.getpid()}:analysis'\n"
        "assert claim_messages(engine, worker=worker)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    spec = WorkerSpec("analysis-1", "analysis", (sys.executable, "-c", claim_and_die))
    sup = Supervisor(engine, [spec], max_attempts=3)
    sup.start()
    try:
        until(lambda: row(engine, "analysis-1").state == "restarting", sup)
    finally:
        sup.stop()
    with Session(engine) as session:
        message = session.get(Message, pk)
        assert message is not None
        # Back in the queue well before stale_after_seconds, the attempt counted.
        assert (message.state, message.claimed_by, message.attempts) == ("received", None, 1)
        actions = session.exec(
            select(AuditLog.action, AuditLog.actor).where(col(AuditLog.entity_id) == pk)
        ).all()
    assert ("message.recovered", "supervisor") in actions


def test_stop_ends_every_child(engine: Engine) -> None:
    specs = [WorkerSpec(f"analysis-{i}", "analysis", SLEEPER) for i in (1, 2)]
    sup = Supervisor(engine, specs, max_attempts=3)
    sup.start()
    pids = [row(engine, s.name).pid for s in specs]
    sup.stop(timeout=5)
    assert all(pid is not None and gone(pid) for pid in pids)
    assert {w.state for w in list_workers(engine)} == {"stopped"}


def test_a_child_stops_when_its_parent_is_gone() -> None:
    read_end, write_end = os.pipe()
    stop = threading.Event()
    with os.fdopen(read_end, "rb") as pipe:
        stop_with_parent(stop, pipe)
        assert not stop.wait(0.2)
        os.close(write_end)  # what the kernel does when the supervisor dies
        assert stop.wait(5)


def test_a_supervised_child_runs_at_lower_priority() -> None:
    code = "from gateway.supervise.child import lower_priority; print(lower_priority(5))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert int(out.stdout) == min(os.nice(0) + 5, 19)
