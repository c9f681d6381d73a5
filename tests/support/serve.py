"""The real `supportgate serve` as a subprocess on 127.0.0.1, for tests that kill its
processes: a config file, start and wait for the front door, `status --json`, a stop
that must end with exit code 0, and the pids of what it started.

Plain Python (no pytest) like the rest of tests/support.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def write_config(directory: Path, *, db: Path, port: int, extra: str = "") -> Path:
    path = directory / "config.toml"
    path.write_text(
        f'[storage]\nurl = "sqlite:///{db}"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nrecipients = ["support@example.com"]\n'
        f'[kb]\ndir = "{ROOT / "kb"}"\n'
        "[metrics_endpoint]\nenabled = false\n"
        '[logging]\nlevel = "INFO"\n' + extra,
        encoding="utf-8",
    )
    return path


def start_serve(config: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "--config", str(config), "serve", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "serve exited early"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(100).startswith(b"220"):
                    return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("serve did not start listening")


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def status(config: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--config", str(config), "status", "--json"],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=True,
    )
    report: dict[str, Any] = json.loads(out.stdout)
    return report


def workers(config: Path, role: str | None = None) -> list[dict[str, Any]]:
    return [w for w in status(config)["workers"] if role is None or w["role"] == role]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child that exited but was not yet reaped by its (dead) parent is a zombie.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def stop_serve(proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    assert proc.returncode == 0, log.read_text(errors="replace")[-4000:]
