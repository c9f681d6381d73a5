"""A throwaway PostgreSQL cluster for tests, started as an unprivileged user.

initdb and postgres refuse to run as root, so as root the cluster runs as the `postgres`
system user (created by Debian's postgresql package) on a free port on 127.0.0.1, with
fsync off for speed. The factory returns a SQLAlchemy URL and stops the server itself.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def pg_bindir() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists() and Path(candidate, "postgres").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found and Path(found).with_name("postgres").exists() else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_user() -> dict[str, Any]:
    if os.geteuid() != 0:
        return {}
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        entry = pwd.getpwnam("nobody")
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


@contextmanager
def postgres_cluster() -> Iterator[str]:
    bindir = pg_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL binaries not found (apt-get install postgresql)")
    # Not under pytest's tmp dir: that is private to root, and the server runs as another user.
    workdir = Path(tempfile.mkdtemp(prefix="supportgate-pg-"))
    data = workdir / "pgdata"
    data.mkdir(parents=True)
    who = _as_user()
    if who:
        os.chown(workdir, who["user"], who["group"])
        os.chown(data, who["user"], who["group"])
    subprocess.run(
        [str(bindir / "initdb"), "-D", str(data), "--no-sync", "-A", "trust", "-U", "postgres"],
        check=True, capture_output=True, timeout=120, **who,
    )  # fmt: skip
    port = _free_port()
    proc = subprocess.Popen(
        [str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(workdir),
         "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **who,
    )  # fmt: skip
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError("postgres exited during start-up")
            try:
                import psycopg

                with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres"):
                    break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)
