"""The write gate between real processes on one SQLite file: while the front door keeps
writing, a worker's transactions wait for it instead of the other way round, and the
worker carries on as soon as the front door pauses."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from gateway.supervise.write_gate import gate_files, give_way, go_first
from storage.db import make_engine

ROOT = Path(__file__).resolve().parents[3]

# A worker whose every transaction holds SQLite's write lock for 30 ms.
WORKER = """
import sys, time
from sqlalchemy import text
from storage.db import make_engine
from gateway.supervise.write_gate import give_way
engine = make_engine(sys.argv[1])
give_way(engine)
print("ready", flush=True)
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t (who, at) VALUES ('worker', :at)"), {"at": time.time()})
        time.sleep(0.03)
"""


def _count(engine: Engine, who: str, since: float, until: float) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM t WHERE who = :who AND at BETWEEN :a AND :b"),
                {"who": who, "a": since, "b": until},
            ).scalar_one()
        )


@pytest.mark.parametrize("workers", [1, 2])
def test_the_front_door_writes_first_and_the_workers_resume(tmp_path: Path, workers: int) -> None:
    url = f"sqlite:///{tmp_path / 'gate.sqlite3'}"
    setup = make_engine(url)
    with setup.begin() as conn:
        conn.execute(text("CREATE TABLE t (who TEXT, at REAL)"))
    setup.dispose()
    door = make_engine(url)
    assert go_first(door)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, "8"], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        for _ in range(workers)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(1.0)  # the worker has the database to itself
        start = time.time()
        waits = []
        while time.time() - start < 2.0:  # a flood: a commit every millisecond or two
            began = time.perf_counter()
            with door.begin() as conn:
                waits.append(time.perf_counter() - began)
                conn.execute(text("INSERT INTO t VALUES ('door', :at)"), {"at": time.time()})
            time.sleep(0.001)
        flood_end = time.time()
        time.sleep(1.5)  # the front door pauses
    finally:
        for proc in procs:
            proc.wait(timeout=30)
            assert proc.stdout is not None
            proc.stdout.close()
        door.dispose()
    check = make_engine(url)
    assert _count(check, "worker", start - 1.0, start) >= 5  # it ran before the flood
    # During the flood the front door never waited long, and analysis all but stopped;
    # without the gate SQLite's busy handler starves the front door instead. Workers
    # go one at a time, so however many there are, one transaction at most is ahead.
    assert _count(check, "door", start, flood_end) >= 100
    assert max(waits) < 1.0
    assert _count(check, "worker", start + 0.2, flood_end) <= 5
    assert _count(check, "worker", flood_end + 0.2, flood_end + 1.5) >= 5  # and it resumed
    check.dispose()


def test_no_gate_where_there_is_no_database_file(tmp_path: Path) -> None:
    memory = make_engine("sqlite:///:memory:")
    assert gate_files(memory) is None
    assert not give_way(memory) and not go_first(memory)
    memory.dispose()
    on_disk = make_engine(f"sqlite:///{tmp_path / 'q.sqlite3'}")
    assert gate_files(on_disk) == (tmp_path / "q.sqlite3-gate", tmp_path / "q.sqlite3-room")
    on_disk.dispose()
