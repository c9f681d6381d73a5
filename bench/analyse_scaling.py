"""Messages analysed per second with 1, 2 and 4 analysis processes on one database.

A team adds `supportgate process` workers when the queue fills faster than one drains
it; this shows what each added worker buys on SQLite (one file, writers take turns) and
on PostgreSQL (row locks, `FOR UPDATE SKIP LOCKED` claims). Each run gets a fresh
database holding `--messages` generated support mails of about 4 KB from distinct
customers (so the loop guard suppresses none), ingested through the real `ingest`.
Then `n` processes each build an `AnalysisRunner` (the real pipeline: claim, parse,
screen, thread, analyse, draft), load the model, wait for each other, and run until
nothing is left; the rate is messages over the wall time from the common start to the
last finish. Printed beside it: the ideal, the one-process rate times `n`, capped at
the number of cores (more processes than cores cannot run at once); the workers' CPU
time per message (when it stays flat while the rate stops growing, the workers spend
the rest waiting: for cores busy with the database server or other work, or for
locks); and the machine's load average, since other work may share these cores.

Run: .venv/bin/python bench/analyse_scaling.py [--messages 800] [--workers 1 2 4]
     [--url postgresql+psycopg://…]   (default: a throwaway cluster from tests/support)
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import resource
import sys
import tempfile
import time
from contextlib import ExitStack
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlmodel import Session, SQLModel, func, select

from bench.analyse_throughput import body
from gateway.config import Config, parse_config
from gateway.conversation.pipeline import AnalysisRunner
from gateway.inbound.ingest import ingest
from gateway.inbound.parse import parse_message
from storage.db import init_db, make_engine
from storage.models import Message

ROOT = Path(__file__).resolve().parents[1]


def mail(rng: random.Random, n: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Customer {n} <ops{n}@customer{n % 400}.example>"
    msg["To"] = "support@example.com"
    msg["Subject"] = f"Checkout failing with 503 since this morning (case {n})"
    msg["Message-ID"] = f"<scaling-{n}@customer{n % 400}.example>"
    msg["Date"] = "Fri, 27 Nov 2026 10:00:00 +0000"
    msg.set_content(body(rng))
    return msg.as_bytes(policy=SMTP)


def config(url: str, tmp: Path) -> Config:
    return parse_config({"storage": {"url": url}, "kb": {"dir": str(ROOT / "kb")}}, base_dir=tmp)


def fill(url: str, count: int) -> None:
    engine = make_engine(url)
    SQLModel.metadata.drop_all(engine)
    init_db(engine)
    rng = random.Random(3)
    for n in range(count):
        ingest(engine, mail(rng, n), source="bench")
    engine.dispose()


def worker(url: str, tmp: Path, start: mp.synchronize.Barrier, out: mp.Queue) -> None:  # type: ignore[type-arg]
    engine = make_engine(url)
    runner = AnalysisRunner(config(url, tmp), engine)
    runner.ctx.analyse_many([parse_message(mail(random.Random(9), -1))])  # load the model
    start.wait()
    handled = 0
    while batch := runner.run_once():
        handled += batch
    out.put((time.perf_counter(), handled))
    engine.dispose()


def run(url: str, tmp: Path, workers: int, count: int) -> tuple[float, float]:
    """(messages per second, worker CPU seconds per message)."""
    fill(url, count)
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    ctx = mp.get_context("fork")
    start, out = ctx.Barrier(workers + 1), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(url, tmp, start, out)) for _ in range(workers)]
    for p in procs:
        p.start()
    start.wait()
    began = time.perf_counter()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds = used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime
    engine = make_engine(url)
    with Session(engine) as session:
        left = session.exec(
            select(func.count()).select_from(Message).where(Message.state == "received")
        ).one()
    engine.dispose()
    if left or sum(h for _, h in results) != count:
        raise SystemExit(f"{url}: {left} left unanalysed, handled {[h for _, h in results]}")
    return count / (max(t for t, _ in results) - began), seconds / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=800)
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2, 4])
    parser.add_argument("--url", help="an existing PostgreSQL database (its tables are dropped)")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    print(f"{cores} cores; {args.messages} messages of ~4 KB per run; "
          "ideal = 1-process rate x min(processes, cores)")  # fmt: skip
    print(f"{'database':<11} {'processes':>9} {'msg/s':>8} {'ideal':>8} {'of ideal':>9} "
          f"{'CPU ms/msg':>11} {'load avg':>9}")  # fmt: skip
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        pg_url = args.url
        if not pg_url:
            from tests.support.postgres import postgres_cluster

            pg_url = stack.enter_context(postgres_cluster())
        backends = [("PostgreSQL", pg_url)]
        if not args.skip_sqlite:
            backends.insert(0, ("SQLite", f"sqlite:///{tmp / 'queue.sqlite3'}"))
        for name, url in backends:
            single = 0.0
            for n in args.workers:
                rate, cpu = run(url, tmp, n, args.messages)
                single = single or rate / n  # the first run is normally the 1-process one
                ideal = single * min(n, cores)
                print(f"{name:<11} {n:>9} {rate:>8.0f} {ideal:>8.0f} {rate / ideal:>8.0%} "
                      f"{cpu * 1000:>11.0f} {os.getloadavg()[0]:>9.1f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
