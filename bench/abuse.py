"""Memory, service and AUTH pacing of a real `serve` while clients abuse the front door.

Starts `supportgate serve` (front door, analysis workers and sender) on 127.0.0.1 and
measures the accept rate of a well-behaved client (4 KB mails on one connection from
127.0.0.1) while quiet. Then many connections from eight other loopback addresses each
send a large DATA without the final dot; the front door's RSS is sampled meanwhile and
the well-behaved client is measured again; after the abusers close, RSS is read once
more. Last, a second `serve` with AUTH required takes wrong passwords from one client
as fast as it will answer, and the guesses per second after the fifth failure are
printed. Each figure is printed beside its goal. Everything is bounded (bytes per
connection, seconds per phase) and stays on loopback.

    python bench/abuse.py [--connections 200] [--mb-per-connection 24] [--seconds 5]
                          [--no-runners] [--budget-mb 512]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import multiprocessing as mp
import os
import shutil
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

AUTH_ENV = "SG_BENCH_ABUSE_PW"
PLAIN_WRONG = base64.b64encode(b"\0mta\0wrong-password").decode()


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
    """Mails on one connection for `seconds`; reconnects if refused or dropped."""
    sent = refused = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as conn:
                while time.monotonic() < deadline:
                    try:
                        conn.sendmail("good@customer.example", ["support@example.com"], mail(sent))
                        sent += 1
                    except smtplib.SMTPResponseException:
                        refused += 1
        except (smtplib.SMTPException, OSError):
            refused += 1
            time.sleep(0.05)
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


def close_all(socks: list[socket.socket]) -> None:
    """Shut down first: a plain close leaves a send blocked in another thread holding on."""
    for sock in list(socks):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


def start_serve(
    workdir: Path, name: str, extra: str, runners: bool
) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    conf = workdir / f"{name}.toml"
    conf.write_text(
        f'[storage]\nurl = "sqlite:///{workdir}/{name}.sqlite3"\n[smtp]\nport = {port}\n{extra}'
    )
    cmd = [sys.executable, "-m", "gateway.cli", "--config", str(conf), "serve"]
    server = subprocess.Popen(
        cmd + ([] if runners else ["--no-runners"]),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert server.stdout is not None
    while "SMTP listening" not in server.stdout.readline():
        if server.poll() is not None:
            raise SystemExit("serve did not start")
    threading.Thread(target=server.stdout.read, daemon=True).start()  # keep the pipe drained
    return server, port


def stop_serve(server: subprocess.Popen[str]) -> None:
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()


def guesses_per_second(port: int, seconds: float) -> tuple[int, float]:
    """Wrong passwords from one client for `seconds`: (failures, guesses/s after the 5th)."""
    failures, late, late_started = 0, 0, 0.0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as conn:
                conn.ehlo()
                while time.monotonic() < deadline:
                    code, _ = conn.docmd("AUTH", "PLAIN " + PLAIN_WRONG)
                    if code == 421:
                        break
                    failures += 1
                    if failures == 5:
                        late_started = time.monotonic()
                    elif failures > 5:
                        late += 1
        except (smtplib.SMTPException, OSError):
            pass
    late_time = time.monotonic() - late_started if late_started else 0.0
    return failures, late / late_time if late_time else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--connections", type=int, default=200)
    ap.add_argument("--mb-per-connection", type=int, default=24)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--no-runners", action="store_true", help="serve without analysis")
    ap.add_argument("--budget-mb", type=float, default=512.0, help="RSS goal of the front door")
    ap.add_argument("--bulk-mb-per-s", type=float, help="[smtp] bulk_data_rate (default: its own)")
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="supportgate-abuse-"))
    rate = (
        ""
        if args.bulk_mb_per_s is None
        else f"bulk_data_rate = {int(args.bulk_mb_per_s * 2**20)}\n"
    )
    server, port = start_serve(workdir, "abuse", rate, not args.no_runners)
    stop = threading.Event()
    socks: list[socket.socket] = []
    try:
        idle = rss_mb(server.pid)
        quiet, _ = accept_rate(port, args.seconds)
        print(f"RSS idle: {idle:.0f} MB")
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
        time.sleep(1.0)  # let the abusers connect and fill what they may
        busy, refused = accept_rate(port, args.seconds)
        stop.set()
        close_all(socks)
        for t in threads:
            t.join(timeout=10)
        time.sleep(3.0)
        sampler_stop.set()
        sampler.join()
        after = rss_mb(server.pid)
        total = args.connections * args.mb_per_connection
        print(
            f"well-behaved client while {args.connections} connections from 8 addresses send "
            f"{total} MB of unfinished DATA: {busy:.0f} msg/s ({refused} refused)"
        )
        print(f"accept ratio busy / quiet:        {busy / quiet:6.2f}  (goal >= 0.80)")
        print(f"front door peak RSS:              {peak:6.0f} MB  (goal <= {args.budget_mb:.0f})")
        print(f"front door RSS 3 s after close:   {after:6.0f} MB  (idle {idle:.0f} MB)")
    finally:
        stop.set()
        close_all(socks)
        stop_serve(server)
    os.environ[AUTH_ENV] = "right-password"
    auth_conf = f'auth_required = true\nauth_username = "mta"\nauth_password_env = "{AUTH_ENV}"\n'
    server, port = start_serve(workdir, "auth", auth_conf, runners=False)
    try:
        failures, guess_rate = guesses_per_second(port, args.seconds + 3)
        print(
            f"AUTH: {failures} wrong guesses in {args.seconds + 3:.0f} s; "
            f"{guess_rate:.2f} guesses/s after the 5th  (goal <= 1)"
        )
    finally:
        stop_serve(server)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
