"""Backfill throughput from a local Dovecot, beside a bare imapclient fetch loop.

Both sides fetch the same messages with `BODY.PEEK[]` in the same batch size from the
same server, in the same run; the baseline only fetches, supportgate also stores every
message durably (one commit per run of up to 500), flags it after the commit and
advances its checkpoint after the flags, through `backfill` as `supportgate ingest
--imap` calls it: the store runs in a forked child process while this one keeps the
connection busy, and the flags go over a second connection (or the store runs in a
thread, when the process may not fork; the output says which). The folder is selected
read-write once before timing, so neither side pays for the bench's freshly appended
(\\Recent) mail. The ratio says how much of the raw IMAP rate the safety costs (target
>= 0.70); the last line compares with fetching, then storing, one after the other
(storing alone is measured in this process, batches of `--batch`). Needs the dovecot
binary (Debian `dovecot-imapd`). CI has two cores; `taskset -c 0,1` shows that here.

    .venv/bin/python bench/imap_backfill.py [--messages 5000] [--size 4096] [--batch 50]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from imapclient import IMAPClient  # noqa: E402

from gateway.config import parse_config  # noqa: E402
from gateway.inbound.imap.child import can_fork  # noqa: E402
from gateway.inbound.imap.poller import backfill  # noqa: E402
from gateway.inbound.ingest import IngestItem, ingest_batch  # noqa: E402
from storage.db import init_db, make_engine  # noqa: E402
from tests.support.dovecot import Dovecot, make_message, start_dovecot  # noqa: E402

PASSWORD_ENV = "SG_BENCH_IMAP_PW"


def bare_fetch(server: Dovecot, batch: int) -> tuple[int, int]:
    """(messages, bytes) fetched by the simplest correct loop."""
    client = IMAPClient(server.host, port=server.port, ssl=False)
    client.login("alice", server.users["alice"])
    client.select_folder("INBOX", readonly=True)
    uids = client.search("ALL")
    total = size = 0
    for start in range(0, len(uids), batch):
        chunk = uids[start : start + batch]
        for item in client.fetch(chunk, [b"BODY.PEEK[]"]).values():
            size += len(item[b"BODY[]"])
            total += 1
    client.logout()
    return total, size


def settle(server: Dovecot) -> None:
    """Select the folder read-write once, as its owner's mail client long since has.

    Mail just appended is \\Recent until then, and that first read-write SELECT rewrites
    the index for every message (0.1 s for 3000 here). The baseline only EXAMINEs, so
    without this the backfill alone would pay for how the bench delivered the mail.
    """
    client = IMAPClient(server.host, port=server.port, ssl=False)
    client.login("alice", server.users["alice"])
    client.select_folder("INBOX")
    client.logout()


def timed_bare(server: Dovecot, batch: int) -> tuple[float, int]:
    started = time.perf_counter()
    count, _ = bare_fetch(server, batch)
    return time.perf_counter() - started, count


def timed_backfill(
    server: Dovecot, batch: int, workdir: Path, after_store: str
) -> tuple[float, int]:
    db = workdir / f"bench-{after_store}.sqlite3"
    config = parse_config(
        {
            "storage": {"url": f"sqlite:///{db}"},
            "imap": [
                {
                    "name": "bench",
                    "host": server.host,
                    "port": server.port,
                    "tls": "none",
                    "username": "alice",
                    "password_env": PASSWORD_ENV,
                    "batch_size": batch,
                    "after_store": after_store,
                    "keyword": f"$Bench{after_store.capitalize()}",
                }
            ],
        },
        base_dir=workdir,
    )
    engine = make_engine(config.database_url)
    init_db(engine)
    started = time.perf_counter()
    stored = backfill(config, engine, "bench", since=None, progress=False)
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed, stored


def store_path(workdir: Path) -> str:
    """Where `backfill` stores in this process: the same test it makes."""
    engine = make_engine(f"sqlite:///{workdir / 'probe.sqlite3'}")
    try:
        return "child process" if can_fork(engine) else "thread"
    finally:
        engine.dispose()


def timed_ingest_only(messages: list[bytes], batch: int, workdir: Path) -> float:
    """Storing alone: the same group-committed ingest in this process, no IMAP at all."""
    engine = make_engine(f"sqlite:///{workdir / 'ceiling.sqlite3'}")
    init_db(engine)
    started = time.perf_counter()
    for start in range(0, len(messages), batch):
        chunk = messages[start : start + batch]
        ingest_batch(engine, [IngestItem(raw, "bench", mailbox="bench") for raw in chunk])
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()
    if shutil.which("dovecot") is None and not Path("/usr/sbin/dovecot").exists():
        print("dovecot is not installed (apt-get install dovecot-imapd)", file=sys.stderr)
        return 2
    os.environ[PASSWORD_ENV] = "bench-secret"
    server = start_dovecot({"alice": "bench-secret"})
    workdir = Path(tempfile.mkdtemp(prefix="sg-bench-imap-"))
    try:
        messages = [make_message(i, size=args.size, prefix="bench") for i in range(args.messages)]
        server.append(messages)
        print(f"{args.messages} messages of ~{len(messages[0])} bytes, batch {args.batch}")
        settle(server)
        bare_fetch(server, args.batch)  # warm the server's caches for both sides
        bare_time, bare_count = timed_bare(server, args.batch)
        where = store_path(workdir)
        sg_time, stored = timed_backfill(server, args.batch, workdir, "keyword")
        ceiling_time = timed_ingest_only(messages, args.batch, workdir)
        assert bare_count == stored == args.messages, (bare_count, stored)
        n = args.messages
        bare_rate, sg_rate, ceiling = n / bare_time, n / sg_time, n / ceiling_time
        print(f"bare imapclient BODY.PEEK[] loop:  {bare_rate:8.0f} msg/s ({bare_time:.2f} s)")
        print(f"supportgate backfill (stored):    {sg_rate:8.0f} msg/s ({sg_time:.2f} s)")
        print(f"  stored in a {where}, on {len(os.sched_getaffinity(0))} CPU(s)")
        print(f"ingest alone, no IMAP:            {ceiling:8.0f} msg/s ({ceiling_time:.2f} s)")
        print(f"ratio supportgate / bare:         {sg_rate / bare_rate:8.2f}  (target >= 0.70)")
        best = 1 / (1 / bare_rate + 1 / ceiling)
        print(f"ratio to fetch-then-store bound:  {sg_rate / best:8.2f}  (bound {best:.0f} msg/s)")
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
