"""Throughput of the conversation stages, each beside a baseline measured in the same run.

* screening: `gateway.conversation.screen.classify` (headers, MIME tree, flufl.bounce when the mail
  looks machine-made) on hand-written fixtures plus the DSN/auto-reply corpora in
  ../shared/data/email when present; baseline = `gateway.inbound.parse.parse_message` of the
  same bytes (screening runs right after parsing, so the ratio is its added cost).
* KB ranking: `KnowledgeBase.rank` over the shipped kb/ for realistic ticket texts;
  baseline = tokenising the same query (the floor any ranking pays).
* sender: `SenderRunner` (claim, build, SMTP, commit, outbound Message row) into a
  local aiosmtpd sink; baseline = bare `smtplib.sendmail` of the same bytes to the
  same sink on one connection.

Run: .venv/bin/python bench/conversations.py [--sends 200] [--repeat 20]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import smtplib

from aiosmtpd.controller import Controller

from gateway.config import parse_config
from gateway.conversation.screen import _mime_tree, classify
from gateway.inbound.parse import parse_message
from gateway.outbound.sender import SenderRunner
from nlp.drafting.kb import KnowledgeBase, tokenize
from storage.db import init_db, make_engine, session_scope
from storage.models import Outbox

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT.parent / "shared" / "data" / "email"
QUERIES = [
    "Our API returns 429 Too Many Requests since this morning on the metrics endpoint",
    "pod/cart-worker keeps restarting, OOMKilled with exit code 137 after the upgrade",
    "ERR_TLS_CERT_EXPIRED on our custom domain shop.example.com since last night",
    "Locked out after losing my phone, MFA codes do not work anymore",
    "We see HTTP 503 from the load balancer in eu-west-1, customers cannot check out",
    "Invoice INV-2026-1182 charged twice, please refund the duplicate",
    "dig returns NXDOMAIN for db-prod.internal and the app cannot connect",
    "Queries got 10x slower after the upgrade to 15.4, CPU is at 100%",
]


def rate(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - start)


def mail_samples() -> list[bytes]:
    paths = sorted((ROOT / "tests" / "fixtures" / "screening").glob("*.eml"))
    paths += sorted((ROOT / "gateway" / "samples").glob("*.eml"))
    for pattern in ("cpython_test_email/data/msg_*.txt", "mimekit_testdata/**/messages/*.txt"):
        paths += sorted(CORPORA.glob(pattern))
    return [p.read_bytes() for p in paths]


def bench_screen(repeat: int) -> None:
    samples = mail_samples()
    parsed = []
    for raw in samples:
        try:
            parsed.append((raw, parse_message(raw)))
        except ValueError:
            continue
    own = {"support@example.com"}

    def parse_all() -> None:
        for raw, _ in parsed:
            parse_message(raw)

    def screen_all() -> None:
        for raw, msg in parsed:
            classify(msg, tree=_mime_tree(raw), own_addresses=own)

    base = rate(parse_all, repeat) * len(parsed)
    ours = rate(screen_all, repeat) * len(parsed)
    hits = sum(classify(m, tree=_mime_tree(r), own_addresses=own) is not None for r, m in parsed)
    print(f"screening  {len(parsed)} messages ({hits} suppressed)")
    print(f"  parse_message (baseline) {base:9.0f} msg/s")
    print(f"  screen.classify          {ours:9.0f} msg/s   ratio {ours / base:5.2f}x baseline")


def bench_kb(repeat: int) -> None:
    kb = KnowledgeBase.from_dir(ROOT / "kb")

    def tok() -> None:
        for q in QUERIES:
            tokenize(q)

    def rank() -> None:
        for q in QUERIES:
            kb.rank(q, intent="outage_report", confidence=0.8, entity_labels=["HTTP_STATUS"])

    n = repeat * 20
    base = rate(tok, n) * len(QUERIES)
    ours = rate(rank, n) * len(QUERIES)
    print(f"kb ranking {len(kb.articles)} articles, {len(QUERIES)} queries")
    print(f"  tokenize (baseline)      {base:9.0f} q/s")
    print(f"  KnowledgeBase.rank       {ours:9.0f} q/s     ratio {ours / base:5.2f}x baseline")


class Sink:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.count += 1
        return "250 OK"


def bench_sender(sends: int) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    handler = Sink()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "bench.sqlite3"
            config = parse_config(
                {
                    "storage": {"url": f"sqlite:///{db}"},
                    "sender": {
                        "enabled": True,
                        "host": "127.0.0.1",
                        "port": port,
                        "max_per_minute": sends * 10,
                    },
                    "runner": {"batch_size": sends},
                },
                base_dir=Path(tmp),
            )
            engine = make_engine(config.database_url)
            init_db(engine)
            with session_scope(engine) as session:
                for i in range(sends):
                    session.add(
                        Outbox(
                            ticket_id=None,
                            message_id=f"<sg-bench{i}@example.com>",
                            to_addrs=[f"c{i}@customer.example"],
                            subject=f"Re: bench {i}",
                            body="Hello,\n\nthis is a benchmark reply.\n" * 20,
                            released_by="bench",
                        )
                    )
            payload = b"Subject: x\r\n\r\n" + b"Hello, this is a benchmark reply.\r\n" * 40
            start = time.perf_counter()
            with smtplib.SMTP("127.0.0.1", port) as client:
                for i in range(sends):
                    client.sendmail("support@example.com", [f"c{i}@customer.example"], payload)
            base = sends / (time.perf_counter() - start)
            runner = SenderRunner(config, engine)
            start = time.perf_counter()
            done = runner.run_once()
            ours = done / (time.perf_counter() - start)
            engine.dispose()
    finally:
        controller.stop()
    print(f"sender     {sends} messages to a local aiosmtpd sink")
    print(f"  smtplib, one connection (baseline) {base:7.0f} msg/s")
    print(f"  SenderRunner (claim+commit per row){ours:7.0f} msg/s", end="")
    print(f"   ratio {ours / base:5.2f}x baseline")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    bench_screen(args.repeat)
    bench_kb(args.repeat)
    bench_sender(args.sends)


if __name__ == "__main__":
    main()
