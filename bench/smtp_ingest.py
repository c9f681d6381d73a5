"""Messages/s through the SMTP front door, beside a bare aiosmtpd + SQLite baseline.

Both servers run in this process on 127.0.0.1 and get the same client load from
separate client processes (so client CPU does not steal the server's GIL): one
connection, then 8 concurrent connections, 4 KB messages. The baseline handler inserts
the raw bytes into SQLite (WAL, synchronous=FULL, like ours) and commits before 250;
ours runs the real `IngestHandler` (dedupe, blob + message + audit rows, one commit).

    python bench/smtp_ingest.py [--messages 2000]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import smtplib
import sqlite3
import sys
import tempfile
import time
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiosmtpd.controller import Controller

from gateway.config import parse_config
from gateway.inbound.smtp import make_controller
from storage.db import init_db, make_engine


def mail(worker: int, n: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Customer {worker} <c{worker}@customer.example>"
    msg["To"] = "support@example.com"
    msg["Subject"] = f"Checkout API returns 503 ({worker}/{n})"
    msg["Message-ID"] = f"<bench-{worker}-{n}-{time.time_ns()}@customer.example>"
    line = "2026-11-27T07:00:01Z ERROR upstream timed out host=api-7.customer.example\n"
    msg.set_content("Hi team,\n\nour API is failing since 07:00.\n\n" + line * 52)
    return msg.as_bytes(policy=SMTP_POLICY)


def client(port: int, worker: int, count: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as conn:
        for n in range(count):
            conn.sendmail(f"c{worker}@customer.example", ["support@example.com"], mail(worker, n))


def load(port: int, connections: int, total: int) -> float:
    per = total // connections
    procs = [mp.Process(target=client, args=(port, w, per)) for w in range(connections)]
    start = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError("client failed")
    return per * connections / (time.perf_counter() - start)


class BareHandler:
    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(str(path), check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE IF NOT EXISTS raw (id INTEGER PRIMARY KEY, data BLOB)")

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.db.execute("INSERT INTO raw (data) VALUES (?)", (envelope.original_content,))  # type: ignore[attr-defined]
        self.db.commit()
        return "250 OK"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_bare(connections: int, total: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        handler = BareHandler(Path(tmp) / "bare.sqlite3")
        ctl = Controller(handler, hostname="127.0.0.1", port=port)
        ctl.start()
        try:
            load(port, connections, min(200, total))  # warm-up
            return load(port, connections, total)
        finally:
            ctl.stop()


def run_ours(connections: int, total: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        config = parse_config(
            {
                "storage": {"url": f"sqlite:///{tmp}/sg.sqlite3"},
                "smtp": {"host": "127.0.0.1", "port": port},
            },
            base_dir=Path(tmp),
        )
        engine = make_engine(config.database_url)
        init_db(engine)
        ctl = make_controller(config, engine)
        ctl.start()
        try:
            load(port, connections, min(200, total))  # warm-up
            return load(port, connections, total)
        finally:
            ctl.stop()
            engine.dispose()


def run(total: int, rounds: int) -> None:
    """Alternate baseline and ours `rounds` times; keep the best of each (least noise)."""
    print(f"4 KB messages ({len(mail(0, 0))} bytes), {total} per run, best of {rounds} rounds")
    print(f"{'connections':>11} {'bare msg/s':>11} {'supportgate msg/s':>18} {'ratio':>6}")
    for connections in (1, 8):
        bare = ours = 0.0
        for _ in range(rounds):
            bare = max(bare, run_bare(connections, total))
            ours = max(ours, run_ours(connections, total))
        print(f"{connections:>11} {bare:>11.0f} {ours:>18.0f} {ours / bare:>6.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    run(args.messages, args.rounds)
