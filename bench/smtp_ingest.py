"""Messages/s through the SMTP front door, beside a bare aiosmtpd + SQLite baseline.

Part `ingest`: both servers run in this process on 127.0.0.1 and get the same client
load from separate client processes (so client CPU does not steal the server's GIL):
one connection, then 8 concurrent connections, 4 KB messages. The baseline handler
inserts the raw bytes into SQLite (WAL, synchronous=FULL, like ours) and commits before
250; ours runs the real `IngestHandler` (dedupe, blob + message + audit rows, one commit).

Part `serve`: the real `supportgate serve` as an operator runs it (a subprocess, its
analysis workers as processes), with `--no-runners` and with analysis on, beside the
bare handler, 8 connections, in each round. Analysis is warm before the timed flood
(the workers have finished a first batch), so the flood arrives while it runs; after
the flood, the time until nothing is left to analyse is the drain time. Each round
prints its own line: on a shared machine the spread says as much as the best.

    python bench/smtp_ingest.py [--messages 1500] [--rounds 3] [--part ingest|serve|all]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import signal
import smtplib
import sqlite3
import subprocess
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

ROOT = Path(__file__).resolve().parents[1]


def mail(worker: int, n: int) -> bytes:
    msg = EmailMessage()
    # A sender per message: the loop guard would suppress a flood from one address.
    msg["From"] = f"Customer {worker} <c{worker}.{n}@customer.example>"
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


SERVE_CONFIG = """
[storage]
url = "sqlite:///{tmp}/sg.sqlite3"
[smtp]
host = "127.0.0.1"
port = {port}
recipients = ["support@example.com"]
[kb]
dir = "{kb}"
[runner]
poll_interval = 0.2
[metrics_endpoint]
enabled = false
[logging]
level = "WARNING"
"""


def backlog(db: Path) -> tuple[int, int]:
    """(waiting for analysis, analysed) in the database `serve` writes."""
    with sqlite3.connect(str(db), timeout=30) as conn:
        rows = dict(conn.execute("SELECT state, count(*) FROM message GROUP BY state").fetchall())
    waiting = rows.get("received", 0) + rows.get("analysing", 0)
    return waiting, sum(rows.values()) - waiting


def wait_until(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def run_serve(connections: int, total: int, *, runners: bool) -> tuple[float, float | None]:
    """msg/s the real `serve` accepts, and (with runners) seconds to drain the backlog."""
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        config = Path(tmp) / "config.toml"
        config.write_text(SERVE_CONFIG.format(tmp=tmp, port=port, kb=ROOT / "kb"))
        log_path = Path(tmp) / "serve.log"
        command = [sys.executable, "-m", "gateway.cli", "--config", str(config), "serve"]
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen(
                command + ([] if runners else ["--no-runners"]),
                cwd=ROOT,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        db = Path(tmp) / "sg.sqlite3"
        try:
            wait_until(lambda: b"SMTP listening" in log_path.read_bytes(), 60, "serve")
            load(port, connections, min(200, total))  # warm-up
            if runners:  # the models are loaded and analysis is under way
                wait_until(lambda: backlog(db)[1] > 0, 300, "the first analysed message")
            rate = load(port, connections, total)
            drain = None
            if runners:
                start = time.perf_counter()
                wait_until(lambda: backlog(db)[0] == 0, 1800, "the backlog to drain")
                drain = time.perf_counter() - start
            return rate, drain
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.returncode != 0:
                print(log_path.read_text(errors="replace")[-3000:], file=sys.stderr)


def run_serve_rounds(total: int, rounds: int, connections: int = 8) -> None:
    """Per round: `--no-runners`, then the bare handler just before and just after the
    run with analysis on, whose ratio is to the mean of those two (the load others put
    on a shared machine drifts between runs)."""
    print(f"\nreal `supportgate serve`, {connections} connections, {total} messages per run")
    head = ("round", "--no-runners", "bare before", "analysis on", "bare after", "ratio", "drain s")
    print("{:>5} {:>12} {:>11} {:>11} {:>10} {:>6} {:>8}".format(*head))
    ratios: list[float] = []
    for r in range(1, rounds + 1):
        door, _ = run_serve(connections, total, runners=False)
        before = run_bare(connections, total)
        ours, drain = run_serve(connections, total, runners=True)
        after = run_bare(connections, total)
        ratios.append(ours / ((before + after) / 2))
        print(
            f"{r:>5} {door:>12.0f} {before:>11.0f} {ours:>11.0f} {after:>10.0f} "
            f"{ratios[-1]:>6.2f} {drain or 0:>8.1f}"
        )
    print(f"accept ratio with analysis on, serve / bare: {min(ratios):.2f}-{max(ratios):.2f}")


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
    parser.add_argument("--messages", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--part", choices=("ingest", "serve", "all"), default="all")
    args = parser.parse_args()
    if args.part in ("ingest", "all"):
        run(args.messages, args.rounds)
    if args.part in ("serve", "all"):
        run_serve_rounds(args.messages, args.rounds)
