"""Memory and service of a real `serve` process while clients hold huge DATA open.

Starts `supportgate serve --no-runners` on 127.0.0.1, measures the accept rate of a
well-behaved client (4 KB mails on one connection) while quiet, then opens many
connections from several loopback addresses that each send a large DATA without the
final dot, samples the server's RSS meanwhile, and measures the well-behaved client
again. Everything is bounded (bytes per connection, seconds per phase) and stays on
loopback; the abusive connections are closed at the end.

    python bench/abuse.py [--connections 40] [--mb-per-connection 8] [--seconds 5]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.net import free_port  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def mail(n: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = "good@customer.example"
    msg["To"] = "support@example.com"
    msg["Subject"] = f"Checkout API returns 503 ({n})"
    msg["Message-ID"] = f"<abuse-bench-{n}-{time.time_ns()}@customer.example>"
    msg.set_content("our API is failing since 07:00.\n" + "log line " * 450)
    return msg.as_bytes(policy=SMTP_POLICY)


def good_client(port: int, seconds: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    sent = refused = 0
    deadline = time.monotonic() + seconds
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as conn:
        while time.monotonic() < deadline:
            try:
                conn.sendmail("good@customer.example", ["support@example.com"], mail(sent))
                sent += 1
            except smtplib.SMTPResponseException:
                refused += 1
    out.put((sent / seconds, refused))


def accept_rate(port: int, seconds: float) -> tuple[float, int]:
    out: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    proc = mp.Process(target=good_client, args=(port, seconds, out))
    proc.start()
    result = out.get(timeout=seconds + 60)
    proc.join(timeout=10)
    return result  # type: ignore[no-any-return]


def abuser(port: int, source: str, nbytes: int, stop: threading.Event, socks: list) -> None:  # type: ignore[type-arg]
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(source, 0))
    except OSError:
        return
    socks.append(sock)
    reader = sock.makefile("rb")
    if not reader.readline().startswith(b"220"):
        return  # refused (421): the connection cap at work
    sock.sendall(
        b"HELO abuser\r\nMAIL FROM:<a@abuser.example>\r\nRCPT TO:<support@example.com>\r\n"
    )
    sock.sendall(b"DATA\r\n")
    chunk = (b"x" * 998 + b"\r\n") * 1000  # 1 MB of legal lines
    sent = 0
    while sent < nbytes and not stop.is_set():
        try:
            sock.sendall(chunk)
        except OSError:
            return
        sent += len(chunk)
    # No final dot: the server holds (or has dropped) what it read until we go away.


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--connections", type=int, default=40)
    ap.add_argument("--mb-per-connection", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="supportgate-abuse-"))
    port = free_port()
    conf = workdir / "config.toml"
    conf.write_text(f'[storage]\nurl = "sqlite:///{workdir}/q.sqlite3"\n[smtp]\nport = {port}\n')
    server = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "--config", str(conf), "serve", "--no-runners"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    stop = threading.Event()
    socks: list[socket.socket] = []
    try:
        assert server.stdout is not None
        while "SMTP listening" not in server.stdout.readline():
            if server.poll() is not None:
                raise SystemExit("serve did not start")
        print(f"RSS idle: {rss_mb(server.pid):.0f} MB")
        quiet, _ = accept_rate(port, args.seconds)
        print(f"well-behaved client, quiet: {quiet:.0f} msg/s (RSS {rss_mb(server.pid):.0f} MB)")
        threads = [
            threading.Thread(
                target=abuser,
                args=(port, f"127.0.0.{2 + i % 8}", args.mb_per_connection << 20, stop, socks),
                daemon=True,
            )
            for i in range(args.connections)
        ]
        for t in threads:
            t.start()
        peak = 0.0
        sampler_stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not sampler_stop.wait(0.1):
                peak = max(peak, rss_mb(server.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        busy, refused = accept_rate(port, args.seconds)
        for t in threads:
            t.join(timeout=args.seconds * 4)
        sampler_stop.set()
        sampler.join()
        total = args.connections * args.mb_per_connection
        print(
            f"well-behaved client, {args.connections} connections sending {total} MB of "
            f"unfinished DATA: {busy:.0f} msg/s ({refused} refused), peak RSS {peak:.0f} MB"
        )
    finally:
        stop.set()
        for sock in socks:
            sock.close()
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
