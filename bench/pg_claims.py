"""Claiming messages on one PostgreSQL from 2 and 4 processes: three ways, side by side.

Several `supportgate process` hosts share one database, and every batch they analyse
starts with a claim. The ways compared, each in its own processes on a fresh queue:

- `compare-and-set`: read the oldest candidates, then `UPDATE … WHERE id=? AND
  state='received'` one by one; a row another claimer took first updates nothing.
  This is what SQLite uses (it has no row locks: BEGIN IMMEDIATE serialises claimers).
- `locked-then-cas`: the same, but the candidates are read `FOR UPDATE SKIP LOCKED`.
- `skip-locked-in`: one statement, `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP
  LOCKED LIMIT n) RETURNING id`, the form most examples show.
- `skip-locked`: the same with the locking SELECT in a `WITH … AS MATERIALIZED` query,
  which is what `storage.queue.claim_messages` runs on PostgreSQL. (As a plain `IN`
  subquery the planner may rerun it for every row it joins, each run locking more rows.)

Each claimer claims batches of `--batch` and finishes every message in its own
transaction (as the analysis runner does), optionally after `--work-ms` of pretend
analysis. Printed: messages claimed per second, claims that came back short while work
was left (a claimer that lost a race), how long a claim took (median and 99th
percentile), and that no message was claimed twice (the run fails if one was).

Run: .venv/bin/python bench/pg_claims.py [--messages 20000] [--batch 20] [--work-ms 0]
     [--url postgresql+psycopg://…]   (default: a throwaway cluster from tests/support)
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, or_, text, update
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel, col, select

from storage.db import init_db, make_engine, session_scope
from storage.models import Message, MessageState, RawMessage, utcnow
from storage.queue import claim_messages

Claim = Callable[[Engine, str, int], list[int]]


def _candidates(locked: bool) -> Any:
    stmt = (
        select(Message.id)
        .where(
            Message.state == MessageState.RECEIVED,
            or_(col(Message.claimed_at).is_(None), col(Message.claimed_at) <= utcnow()),
        )
        .order_by(col(Message.id))
    )
    return stmt.with_for_update(skip_locked=True) if locked else stmt


def _cas(engine: Engine, worker: str, limit: int, *, locked: bool) -> list[int]:
    with session_scope(engine) as session:
        ids: list[int] = session.exec(_candidates(locked).limit(limit)).all()  # type: ignore[attr-defined]
        claimed = []
        for msg_id in ids:
            result = session.execute(
                update(Message)
                .where(col(Message.id) == msg_id, col(Message.state) == MessageState.RECEIVED)
                .values(state=MessageState.ANALYSING, claimed_by=worker, claimed_at=utcnow())
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(int(msg_id))
        return claimed


def _skip_locked_in(engine: Engine, worker: str, limit: int) -> list[int]:
    locked = _candidates(True).limit(limit).scalar_subquery()
    with session_scope(engine) as session:
        taken = session.execute(
            update(Message)
            .where(col(Message.id).in_(locked), col(Message.state) == MessageState.RECEIVED)
            .values(state=MessageState.ANALYSING, claimed_by=worker, claimed_at=utcnow())
            .returning(col(Message.id))
        ).scalars()
        return sorted(int(i) for i in taken)


WAYS: dict[str, Claim] = {
    "compare-and-set": lambda e, w, n: _cas(e, w, n, locked=False),
    "locked-then-cas": lambda e, w, n: _cas(e, w, n, locked=True),
    "skip-locked-in": _skip_locked_in,
    "skip-locked": lambda e, w, n: claim_messages(e, worker=w, limit=n),
}


def fill(engine: Engine, count: int) -> None:
    SQLModel.metadata.drop_all(engine)
    init_db(engine)
    now = utcnow()
    with session_scope(engine) as session:
        session.execute(insert(RawMessage), [{"sha256": "0" * 64, "size": 1, "data": b"x"}])
        rows = [
            {"dedupe_key": f"mid:c{i}", "sha256": "0" * 64, "state": "received",
             "received_at": now, "written_at": now, "envelope_to": [], "to_addrs": [],
             "references": []}
            for i in range(count)
        ]  # fmt: skip
        for start in range(0, count, 5000):
            session.execute(insert(Message), rows[start : start + 5000])


def claimer(url: str, way: str, batch: int, work_ms: float, name: str, out: mp.Queue) -> None:  # type: ignore[type-arg]
    engine = make_engine(url)
    claim = WAYS[way]
    got: list[int] = []
    short = 0
    waits: list[float] = []
    while True:
        started = time.perf_counter()
        ids = claim(engine, name, batch)
        waits.append(time.perf_counter() - started)
        if not ids:
            with engine.connect() as conn:
                left = conn.execute(text("SELECT count(*) FROM message WHERE state='received'"))
                if not left.scalar_one():
                    break
        if len(ids) < batch:
            short += 1
        for msg_id in ids:
            if work_ms:
                time.sleep(work_ms / 1000)
            with session_scope(engine) as session:
                session.execute(
                    update(Message).where(col(Message.id) == msg_id).values(state="drafted")
                )
        got.extend(ids)
    engine.dispose()
    out.put((name, got, short, waits))


def run(url: str, way: str, workers: int, args: argparse.Namespace) -> None:
    engine = make_engine(url)
    fill(engine, args.messages)
    engine.dispose()
    ctx = mp.get_context("fork")
    out: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    procs = [
        ctx.Process(target=claimer, args=(url, way, args.batch, args.work_ms, f"w{i}", out))
        for i in range(workers)
    ]
    started = time.perf_counter()
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    elapsed = time.perf_counter() - started
    for p in procs:
        p.join()
    ids = [i for _, got, _, _ in results for i in got]
    dupes = len(ids) - len(set(ids))
    waits = sorted(w for *_, ws in results for w in ws)
    p99 = waits[min(len(waits) - 1, int(len(waits) * 0.99))]
    print(
        f"{way:16} {workers} claimers  {len(set(ids)) / elapsed:8,.0f} msg/s  "
        f"short claims {sum(r[2] for r in results):5}  "
        f"claim median {statistics.median(waits) * 1000:5.1f} ms p99 {p99 * 1000:6.1f} ms  "
        f"claimed twice {dupes}  per claimer {[len(r[1]) for r in results]}",
        flush=True,
    )
    if dupes or len(set(ids)) != args.messages:
        raise SystemExit(f"{way}: {dupes} claimed twice, {args.messages - len(set(ids))} missed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=20, help="the runner's batch_size")
    parser.add_argument("--work-ms", type=float, default=0.0, help="pretend analysis per message")
    parser.add_argument("--url", help="an existing PostgreSQL database (its tables are dropped)")
    parser.add_argument("--ways", nargs="*", default=list(WAYS), choices=list(WAYS))
    args = parser.parse_args()
    print(
        f"{args.messages:,} messages, batches of {args.batch}, {args.work_ms} ms work each, "
        f"{os.cpu_count()} cores"
    )
    with ExitStack() as stack:
        url = args.url
        if not url:
            from tests.support.postgres import postgres_cluster

            url = stack.enter_context(postgres_cluster())
        for workers in (2, 4):
            for way in args.ways:
                run(url, way, workers, args)


if __name__ == "__main__":
    main()
