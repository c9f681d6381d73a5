"""A database file that was read-only for a while: 451 meanwhile, 250 again afterwards.

SQLite opens a file it cannot write read-only and that connection stays read-only even
after write access is back; pooled, it used to answer 451 until a restart. Root
ignores file permissions, so the front door runs in a child process as an unprivileged
user (`nobody`), which chmods its own database file (and directory) and sends real mail
to itself over 127.0.0.1. With only the file read-only, SQLite also creates the -wal and
-shm files read-only meanwhile; the first write after the fix meets those, and the
front door's one retry on a fresh connection gets past them, so the client sees 250.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, os, smtplib, sys
from pathlib import Path
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY

from gateway.config import parse_config
from gateway.inbound.smtp import make_controller
from storage.db import init_db, make_engine
from tests.support.net import free_port

workdir, lock_dir = sys.argv[1], sys.argv[2] == "yes"
db = os.path.join(workdir, "queue.sqlite3")
engine = make_engine(f"sqlite:///{db}")
init_db(engine)
engine.dispose()

def mail(n):
    msg = EmailMessage()
    msg["From"] = "dana@acme.example"
    msg["To"] = "support@example.com"
    msg["Subject"] = f"read-only {n}"
    msg["Message-ID"] = f"<ro{n}@acme.example>"
    msg.set_content("hello")
    return msg.as_bytes(policy=SMTP_POLICY)

def send(port, n):
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo()
        client.mail("dana@acme.example")
        client.rcpt("support@example.com")
        return client.data(mail(n))[0]

os.chmod(db, 0o444)
if lock_dir:
    os.chmod(workdir, 0o555)
port = free_port()
config = parse_config(
    {"storage": {"url": f"sqlite:///{db}"}, "smtp": {"port": port}}, base_dir=Path(workdir)
)
engine = make_engine(config.database_url)
controller = make_controller(config, engine)
controller.start()
codes = [send(port, 1), send(port, 1)]
os.chmod(workdir, 0o755)
os.chmod(db, 0o644)
codes += [send(port, 2), send(port, 2), send(port, 3)]
controller.stop()
engine.dispose()
print(json.dumps(codes))
"""


def _child_command() -> tuple[list[str], dict[str, Any]]:
    """How to run CHILD as an unprivileged user (root cannot be refused a write)."""
    if os.geteuid() != 0:
        return [sys.executable, "-c", CHILD], {}
    nobody = pwd.getpwnam("nobody")
    who = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
    # The virtualenv's interpreter may live under root's home; the system one of the
    # same version can load the same site-packages.
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    system_python = shutil.which(version, path="/usr/bin:/usr/local/bin")
    if system_python is None:
        pytest.skip(f"no system {version} to run as an unprivileged user")
    site = [p for p in sys.path if p.endswith("site-packages") and os.access(p, os.R_OK)]
    prelude = f"import sys; sys.path[:0] = {[str(ROOT), *site]!r}\n"
    return [system_python, "-I", "-c", prelude + CHILD], who


@pytest.mark.parametrize("lock_dir", [False, True], ids=["file", "file-and-directory"])
def test_write_access_coming_back_is_noticed_without_a_restart(lock_dir: bool) -> None:
    command, who = _child_command()
    workdir = Path(tempfile.mkdtemp(prefix="supportgate-ro-"))
    try:
        if who:
            os.chown(workdir, who["user"], who["group"])
        proc = subprocess.run(
            [*command, str(workdir), "yes" if lock_dir else "no"],
            cwd=workdir, capture_output=True, text=True, timeout=120, **who,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        codes = json.loads(proc.stdout.strip().splitlines()[-1])
        assert codes == [451, 451, 250, 250, 250], proc.stderr[-3000:]
    finally:
        os.chmod(workdir, 0o755)
        shutil.rmtree(workdir, ignore_errors=True)
