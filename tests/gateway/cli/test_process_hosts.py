"""Two `supportgate process` hosts on one PostgreSQL: every message analysed exactly once.

This is how a team scales analysis past one machine, so it runs the real command in two
subprocesses against a real server. Both processes are connected and polling before the
mail arrives, so they compete for the same rows; each process's PostgreSQL connections
carry its own application name, which is how the test knows that both are up. Batches of
one make claims frequent enough to overlap: a claim that is not exclusive shows up here
as a message claimed twice.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from gateway.inbound.ingest import ingest
from storage.models import AnalysisRecord, AuditLog, Draft, Message
from storage.seed.scenarios import FIXED_NOW, raw_mail, scenario
from tests.support.postgres import pg_bindir

ROOT = Path(__file__).resolve().parents[3]
MESSAGES = 150

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.skipif(pg_bindir() is None, reason="PostgreSQL binaries are not installed"),
]


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def scalar(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def test_two_process_hosts_analyse_each_message_once(
    pg_engine: Engine, pg_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[storage]\nurl = "{pg_url}"\n'
        f'[kb]\ndir = "{ROOT / "kb"}"\n'
        "[runner]\npoll_interval = 0.05\nbatch_size = 1\n"
        '[logging]\nlevel = "WARNING"\n'
    )
    procs = []
    for host in ("a", "b"):
        log = (tmp_path / f"host-{host}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "--config", str(config), "process"],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PGAPPNAME": f"supportgate-host-{host}"},
            )
        )
    try:
        wait_for(
            lambda: (
                scalar(
                    pg_engine,
                    "SELECT count(DISTINCT application_name) FROM pg_stat_activity "
                    "WHERE application_name LIKE 'supportgate-host-%'",
                )
                == 2
            ),
            120,
            "both hosts to connect",
        )
        rng = random.Random(5)
        for i in range(MESSAGES):
            sc = scenario(i, rng, FIXED_NOW)
            raw = raw_mail(f"hosts-{i}@x.example", sc["sender"], sc["name"], sc["subject"],
                           sc["body"], sc["at"])  # fmt: skip
            ingest(pg_engine, raw, source="test")
        wait_for(
            lambda: (
                scalar(
                    pg_engine,
                    "SELECT count(*) FROM message WHERE state IN ('received', 'analysing')",
                )
                == 0
            ),
            300,
            "every message to be analysed",
        )
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=60)
    assert [p.returncode for p in procs] == [0, 0]

    with Session(pg_engine) as session:
        messages = session.exec(select(Message)).all()
        assert len(messages) == MESSAGES
        assert {m.state for m in messages} <= {"drafted", "suppressed"}
        assert {m.attempts for m in messages} == {1}  # each claimed once, by one host
        finishes = session.exec(
            select(AuditLog.entity_id, func.count(), func.min(AuditLog.actor))
            .where(col(AuditLog.action).in_(["message.drafted", "message.suppressed"]))
            .group_by(col(AuditLog.entity_id))
        ).all()
        assert sorted(int(pk or 0) for pk, _, _ in finishes) == sorted(
            int(m.id or 0) for m in messages
        )
        assert {n for _, n, _ in finishes} == {1}
        analyses = session.exec(
            select(AnalysisRecord.message_pk, func.count()).group_by(col(AnalysisRecord.message_pk))
        ).all()
        assert all(n == 1 for _, n in analyses)
        drafts = session.exec(
            select(Draft.message_pk, func.count()).group_by(col(Draft.message_pk))
        )
        assert all(n == 1 for _, n in drafts.all())
        # Both hosts did part of the work (actors are host:pid:analysis).
        hosts = {actor.split(":")[1] for _, _, actor in finishes}
        assert hosts == {str(p.pid) for p in procs}
