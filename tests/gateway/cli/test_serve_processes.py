"""`supportgate serve` as processes: the front door in the supervisor, analysis workers
and the sender as children at lower priority, restarted when they die, stopped and
emptied of claims with serve; and `status` shows them.

SIGKILL of any one of them loses and duplicates nothing: a worker (its claims come back
at once and each message ends with one draft), the sender mid-delivery (that reply is
`uncertain`, never sent twice), and the front door itself with workers running (the
workers stop on their own; every 250 is stored once, then analysed once).
"""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
from collections import Counter
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from storage.db import init_db, make_engine
from storage.models import Draft, Message, Outbox, OutboxState
from tests.support.net import free_port
from tests.support.relay import released, running_sink
from tests.support.serve import (
    alive,
    start_serve,
    status,
    stop_serve,
    wait_for,
    wait_listening,
    workers,
    write_config,
)

ROOT = Path(__file__).resolve().parents[3]
DONE = ("drafted", "suppressed")


def _mail(n: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"customer{n}@customers.example"
    msg["To"] = "support@example.com"
    msg["Subject"] = f"checkout fails with 503 ({n})"
    msg["Message-ID"] = f"<proc-{n}@customers.example>"
    msg.set_content(f"Hi,\n\nour checkout API answers 503 since 07:00 (case {n}).\n")
    return msg.as_bytes(policy=SMTP_POLICY)


def _send(port: int, numbers: range) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        for n in numbers:
            client.sendmail(f"customer{n}@customers.example", ["support@example.com"], _mail(n))


def _states(engine: Engine) -> Counter[str]:
    with Session(engine) as session:
        return Counter(session.exec(select(Message.state)).all())


def _drafts_per_message(engine: Engine) -> Counter[int]:
    with Session(engine) as session:
        return Counter(session.exec(select(Draft.message_pk)).all())


def _analysed_once(engine: Engine, total: int) -> None:
    """Every message analysed, none stuck, and none drafted twice."""
    states = _states(engine)
    assert sum(states.values()) == total, states
    assert set(states) <= set(DONE), states
    assert all(count == 1 for count in _drafts_per_message(engine).values())


@pytest.fixture
def engine_at(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'queue.sqlite3'}")
    init_db(engine)
    return engine


@pytest.mark.slow
def test_workers_are_lower_priority_children_that_stop_with_serve(
    tmp_path: Path, engine_at: Engine
) -> None:
    port = free_port()
    db = tmp_path / "queue.sqlite3"
    config = write_config(
        tmp_path, db=db, port=port, extra="[runner]\nworkers = 2\nnice = 7\npoll_interval = 0.2\n"
    )
    log = tmp_path / "serve.log"
    proc = start_serve(config, log)
    try:
        wait_listening(port, proc)
        # Both: the workers start one after the other, and each reports itself alive.
        found = wait_for(lambda: _both_alive(workers(config)), 30, "workers")
        assert sorted(w["name"] for w in found) == ["analysis-1", "analysis-2"]
        pids = [w["pid"] for w in found]
        assert proc.pid not in pids and all(alive(p) for p in pids)
        mine = os.getpriority(os.PRIO_PROCESS, proc.pid)
        assert {os.getpriority(os.PRIO_PROCESS, p) for p in pids} == {min(mine + 7, 19)}

        _send(port, range(6))
        wait_for(lambda: set(_states(engine_at)) <= set(DONE), 180, "analysis")
        text = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "--config", str(config), "status"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "analysis lag: -" in text
        assert f"worker analysis-1: alive, pid {pids[0]}, 0 restart(s)" in text
    finally:
        stop_serve(proc, log)
    assert not any(alive(p) for p in pids)
    assert {w["state"] for w in status(config)["workers"]} == {"stopped"}
    _analysed_once(engine_at, 6)


@pytest.mark.slow
def test_sigkill_of_an_analysis_worker_loses_and_duplicates_nothing(
    tmp_path: Path, engine_at: Engine
) -> None:
    port = free_port()
    db = tmp_path / "queue.sqlite3"
    extra = "[runner]\nworkers = 1\nbatch_size = 5\npoll_interval = 0.1\n"
    config = write_config(tmp_path, db=db, port=port, extra=extra)
    log = tmp_path / "serve.log"
    proc = start_serve(config, log)
    try:
        wait_listening(port, proc)
        (worker,) = wait_for(lambda: workers(config, "analysis"), 30, "the worker")
        _send(port, range(30))
        # Kill it while it holds claims (its first batch waits for the models to load).
        wait_for(lambda: _states(engine_at)["analysing"] > 0, 60, "a claim")
        os.kill(worker["pid"], signal.SIGKILL)

        def restarted() -> dict[str, object] | None:
            now = workers(config, "analysis")[0]
            return now if now["restarts"] == 1 and now["alive"] else None

        again = wait_for(restarted, 30, "the restart")
        assert again["last_exit"] == "killed by SIGKILL" and again["pid"] != worker["pid"]
        # Well before stale_after_seconds (600 s): the supervisor handed the claims back.
        wait_for(lambda: set(_states(engine_at)) <= set(DONE), 240, "analysis after the kill")
    finally:
        stop_serve(proc, log)
    _analysed_once(engine_at, 30)
    with Session(engine_at) as session:
        retried = session.exec(select(func.count()).where(col(Message.attempts) > 1)).one()
    assert retried >= 1  # the killed batch was analysed again, once


@pytest.mark.slow
def test_sigkill_of_the_sender_mid_delivery_never_sends_twice(
    tmp_path: Path, engine_at: Engine
) -> None:
    port = free_port()
    db = tmp_path / "queue.sqlite3"
    with running_sink() as (relay, relay_port):
        extra = (
            "[runner]\nworkers = 1\npoll_interval = 0.1\n"
            f'[sender]\nenabled = true\nhost = "127.0.0.1"\nport = {relay_port}\n'
            'from_address = "support@example.com"\ntimeout_seconds = 5.0\n'
        )
        config = write_config(tmp_path, db=db, port=port, extra=extra)
        log = tmp_path / "serve.log"
        proc = start_serve(config, log)
        try:
            wait_listening(port, proc)
            (sender,) = wait_for(lambda: workers(config, "sender"), 30, "the sender")
            killed: list[bytes] = []

            def die_mid_delivery(content: bytes) -> None:
                if not killed:  # the relay has the reply; the sender never hears 250
                    killed.append(content)
                    os.kill(sender["pid"], signal.SIGKILL)

            relay.on_message = die_mid_delivery
            ids = [released(engine_at, customer_mid=f"c{i}@customer.example") for i in range(3)]

            def settled() -> bool:
                with Session(engine_at) as session:
                    rows = session.exec(select(Outbox.state)).all()
                return sorted(rows) == ["sent", "sent", "uncertain"]

            wait_for(settled, 60, "the other replies after the restart")
            assert workers(config, "sender")[0]["last_exit"] == "killed by SIGKILL"
            wait_for(lambda: len(relay.messages) >= 3, 10, "the relay")
            proc_alive = proc.poll() is None
        finally:
            stop_serve(proc, log)
    assert proc_alive
    message_ids = [m["Message-ID"] for m in relay.parsed()]
    assert len(message_ids) == 3 and len(set(message_ids)) == 3, "a reply went out twice"
    with Session(engine_at) as session:
        uncertain = session.exec(select(Outbox).where(Outbox.state == OutboxState.UNCERTAIN)).one()
    assert uncertain.id in ids and "not resent" in (uncertain.last_error or "")


@pytest.mark.slow
def test_sigkill_of_the_front_door_with_workers_loses_and_duplicates_nothing(
    tmp_path: Path, engine_at: Engine
) -> None:
    port = free_port()
    db = tmp_path / "queue.sqlite3"
    config = write_config(
        tmp_path, db=db, port=port, extra="[runner]\nworkers = 2\npoll_interval = 0.1\n"
    )
    log = tmp_path / "serve.log"
    proc = start_serve(config, log)
    wait_listening(port, proc)
    found = wait_for(lambda: [w for w in workers(config) if w["alive"]], 30, "workers")
    _send(port, range(20))
    wait_for(lambda: _states(engine_at)["analysing"] > 0, 60, "a claim")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    # The orphaned workers notice, finish or hand back their batch, and exit.
    pids: list[int] = [w["pid"] for w in found]
    wait_for(lambda: not any(alive(pid) for pid in pids), 60, "the workers to exit")
    assert _states(engine_at)["analysing"] == 0

    proc = start_serve(config, log)
    try:
        wait_listening(port, proc)
        _send(port, range(10, 40))  # 10..19 again, as an MTA that never saw the 250 would
        wait_for(
            lambda: sum(_states(engine_at).values()) == 40 and set(_states(engine_at)) <= set(DONE),
            240,
            "analysis after the restart",
        )
    finally:
        stop_serve(proc, log)
    _analysed_once(engine_at, 40)
    with Session(engine_at) as session:
        subjects = session.exec(select(Message.subject)).all()
    assert len(subjects) == len(set(subjects)) == 40


def _both_alive(found: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    alive_now = [w for w in found if w["alive"]]
    return alive_now if len(alive_now) == 2 else None
