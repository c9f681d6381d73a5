"""Backfill throughput from a local Dovecot, beside a bare imapclient fetch loop.

Both sides fetch the same messages with `BODY.PEEK[]` in the same batch size from the
same server, in the same run; the baseline only fetches, supportgate also stores every
message durably (one commit per run of up to 500), flags it after the commit and
advances its checkpoint after the flags, through `backfill` as `supportgate ingest
--imap` calls it: the store (header scan, rows, commit) runs in a forked child process
while this one keeps the connection busy, and the flags of committed runs go out on the
same connection just ahead of later FETCHes (or the store runs in a thread, when the
process may not fork; the output says which). The folder is selected
read-write once before timing, so neither side pays for the bench's freshly appended
(\\Recent) mail. Each round runs the backfill (flagging with a keyword of its own, so
every round stores and flags everything) between two runs of the bare loop, and its
ratio is to their mean: on a shared machine the bare loop alone swings by half between
runs. The ratio says how much of the raw IMAP rate the safety costs (target >= 0.70);
storing alone is measured in this process (batches of `--batch`). Needs the dovecot
binary (Debian `dovecot-imapd`). CI has two cores; `taskset -c 0,1` shows that here.

    .venv/bin/python bench/imap_backfill.py [--messages 5000] [--size 4096] [--batch 50]
                                            [--rounds 5]
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
    server: Dovecot, batch: int, workdir: Path, after_store: str, tag: str = ""
) -> tuple[float, int]:
    db = workdir / f"bench-{after_store}{tag}.sqlite3"
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
                    "keyword": f"$Bench{after_store.capitalize()}{tag.upper()}",
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
    parser.add_argument("--rounds", type=int, default=5)
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
        where = store_path(workdir)
        n = args.messages
        print(f"stored in a {where}, on {len(os.sched_getaffinity(0))} CPU(s)")
        print(
            f"{'round':>5} {'bare before':>11} {'supportgate':>11} {'bare after':>10} {'ratio':>6}"
        )
        ratios: list[float] = []
        after = n / timed_bare(server, args.batch)[0]
        for r in range(1, args.rounds + 1):
            # Each round flags with a keyword of its own, so every round stores and
            # flags all of the mail, and is compared with the bare loop either side.
            before = after
            sg_time, stored = timed_backfill(server, args.batch, workdir, "keyword", f"r{r}")
            after_time, bare_count = timed_bare(server, args.batch)
            assert bare_count == stored == n, (bare_count, stored)
            after = n / after_time
            ours = n / sg_time
            ratios.append(ours / ((before + after) / 2))
            print(f"{r:>5} {before:>11.0f} {ours:>11.0f} {after:>10.0f} {ratios[-1]:>6.2f}")
        ceiling = n / timed_ingest_only(messages, args.batch, workdir)
        print(f"ingest alone, no IMAP: {ceiling:.0f} msg/s")
        ratios.sort()
        print(
            f"ratio supportgate / bare: median {ratios[len(ratios) // 2]:.2f}, "
            f"range {ratios[0]:.2f}-{ratios[-1]:.2f}  (target >= 0.70)"
        )
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
