"""A real Dovecot built from declared users, torn down with SIGTERM, and mail to feed it.

The factory writes a private config (127.0.0.1, a free port, passwd-file users, maildir
in a temporary directory), starts `dovecot -F` and waits for the `* OK` greeting. As
root, Dovecot refuses to run its login and internal processes as root, so those run as
the `dovenull`/`dovecot` system users and the mail belongs to an unprivileged uid. The
temporary directory is made outside pytest's 0700 tmp tree so those users can reach it.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

from imapclient import IMAPClient

from tests.support.net import free_port

DOVECOT = shutil.which("dovecot") or (
    "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None
)

CONF = """\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login{mechanisms}
auth_failure_delay = 0
mail_location = maildir:{d}/mail/%u/Maildir
mail_fsync = never
# IDLE hears of new mail through inotify; mail that lands while a session is starting
# IDLE can slip past the watch, and is then noticed only at this check (30 s by
# default), which a loaded test machine hit once.
mailbox_idle_check_interval = 1 secs
first_valid_uid = 1
first_valid_gid = 1
{users}
{oauth2}passdb {{
  driver = passwd-file
  args = {d}/passwd
}}
userdb {{
  driver = passwd-file
  args = {d}/passwd
}}
protocol imap {{
  mail_max_userip_connections = 50
  {capability}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
service anvil {{
  chroot =
  # No auth penalty: tests log in with wrong passwords on purpose, repeatedly.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


class DovecotMissing(RuntimeError):
    """No dovecot binary here; the test session reports the test as skipped, loudly."""


def _accounts() -> tuple[str, int, int]:
    """(dovecot service settings, mail uid, mail gid) for the user we run as."""
    if os.geteuid() != 0:
        # Unprivileged: every Dovecot process runs as us, and so does the mail.
        me, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
        settings = (
            f"default_internal_user = {me}\n"
            f"default_internal_group = {group}\n"
            f"default_login_user = {me}\n"
        )
        return settings, os.getuid(), os.getgid()
    internal = pwd.getpwnam("dovecot")
    settings = (
        "default_internal_user = dovecot\n"
        "default_internal_group = dovecot\n"
        "default_login_user = dovenull\n"
    )
    return settings, internal.pw_uid, internal.pw_gid


@dataclass
class Dovecot:
    """A running private Dovecot and helpers to play 'another mail client'."""

    dir: Path
    port: int
    users: dict[str, str]
    uid: int
    gid: int
    process: subprocess.Popen[bytes] | None = None
    clients: list[IMAPClient] = field(default_factory=list)
    host: str = "127.0.0.1"
    tls_port: int = 0
    ca_file: Path | None = None

    def client(self, user: str = "alice") -> IMAPClient:
        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=10)
        client.login(user, self.users[user])
        self.clients.append(client)
        return client

    def append(
        self,
        messages: list[bytes],
        *,
        user: str = "alice",
        folder: str = "INBOX",
        flags: tuple[bytes, ...] = (),
    ) -> None:
        client = self.client(user)
        if not client.folder_exists(folder):
            client.create_folder(folder)
        for start in range(0, len(messages), 100):
            chunk = messages[start : start + 100]
            client.multiappend(folder, [{"msg": m, "flags": flags} for m in chunk])

    def log_text(self) -> str:
        path = self.dir / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def session_pids(self) -> list[int]:
        """Pids of the `imap` processes serving logged-in sessions."""
        assert self.process is not None
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except OSError:
                continue
            comm = text.split("(", 1)[1].rsplit(")", 1)[0]
            ppid = int(text.rsplit(")", 1)[1].split()[1])
            if ppid == self.process.pid and comm == "imap":
                pids.append(int(stat.parent.name))
        return pids

    def kill_sessions(self) -> int:
        """SIGKILL the server side of every open IMAP session: a connection reset."""
        pids = self.session_pids()
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        return len(pids)

    def restart(self) -> None:
        """Start the same server again (same port, same mail) after `stop`."""
        assert DOVECOT is not None
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.dir / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_greeting(self, time.monotonic() + 10)

    def signal_stop(self) -> None:
        """Close our clients and send SIGTERM without waiting for the exit."""
        for client in self.clients:
            with contextlib.suppress(Exception):
                client.shutdown()
        self.clients.clear()
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        self.signal_stop()
        if self.process is not None and self.process.poll() is None:
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


OAUTH2_PASSDB = """\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {d}/oauth2.conf.ext
}}
"""

# Dovecot asks this URL whether a bearer token is valid (RFC 7662 introspection).
OAUTH2_CONF = """\
introspection_mode = post
introspection_url = {url}
username_attribute = username
active_attribute = active
active_value = true
"""


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (it is its own CA), made with openssl."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def _write_config(
    server: Dovecot,
    service_users: str,
    oauth2_url: str | None,
    tls: bool,
    capability: str | None,
) -> Path:
    d = server.dir
    for sub in ("run", "state", "mail"):
        (d / sub).mkdir()
    lines = [
        f"{user}:{{PLAIN}}{password}:{server.uid}:{server.gid}::{d}/mail/{user}"
        for user, password in server.users.items()
    ]
    (d / "passwd").write_text("\n".join(lines) + "\n")
    for user in server.users:
        (d / "mail" / user).mkdir()
    for path in [d / "mail", *(d / "mail").iterdir()]:
        os.chown(path, server.uid, server.gid)
    conf = d / "dovecot.conf"
    oauth2 = mechanisms = ""
    if oauth2_url:
        (d / "oauth2.conf.ext").write_text(OAUTH2_CONF.format(url=oauth2_url))
        oauth2, mechanisms = OAUTH2_PASSDB.format(d=d), " xoauth2 oauthbearer"
    ssl = "ssl = no"
    if tls:
        cert, key = make_certificate(d)
        server.ca_file = cert
        ssl = f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}"
    text = CONF.format(
        d=d,
        port=server.port,
        tls_port=server.tls_port if tls else 0,
        users=service_users,
        oauth2=oauth2,
        mechanisms=mechanisms,
        ssl=ssl,
        capability=f"imap_capability = {capability}" if capability else "",
    )
    conf.write_text(text)
    return conf


def _wait_for_greeting(server: Dovecot, deadline: float) -> None:
    while time.monotonic() < deadline:
        assert server.process is not None
        if server.process.poll() is not None:
            raise RuntimeError(f"dovecot exited early:\n{server.log_text()}")
        try:
            with socket.create_connection((server.host, server.port), timeout=1) as sock:
                if sock.recv(200).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"dovecot did not greet within 10 s:\n{server.log_text()}")


def start_dovecot(
    users: dict[str, str],
    *,
    oauth2_url: str | None = None,
    tls: bool = False,
    capability: str | None = None,
) -> Dovecot:
    """Start Dovecot for `users`; with `oauth2_url`, XOAUTH2 tokens are checked there;
    with `tls`, STARTTLS on `port` and implicit TLS on `tls_port`, trusting `ca_file`;
    `capability` replaces what the server advertises after login (to hide IDLE, MOVE)."""
    if DOVECOT is None:
        raise DovecotMissing(
            "DOVECOT BINARY NOT FOUND: IMAP tests need a real Dovecot "
            "(apt-get install dovecot-imapd); they are NOT run"
        )
    service_users, uid, gid = _accounts()
    base = Path(tempfile.mkdtemp(prefix="sg-dovecot-"))
    base.chmod(0o755)
    server = Dovecot(dir=base, port=free_port(), users=users, uid=uid, gid=gid)
    server.tls_port = free_port()
    conf = _write_config(server, service_users, oauth2_url, tls, capability)
    server.process = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for_greeting(server, time.monotonic() + 10)
    except BaseException:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
        raise
    return server


def make_message(n: int, *, size: int = 600, prefix: str = "msg", **headers: Any) -> bytes:
    """A plain support email with a unique Message-ID, about `size` bytes long."""
    msg = EmailMessage()
    msg["From"] = f"Customer {n} <customer{n}@example.org>"
    msg["To"] = "support@example.com"
    msg["Subject"] = f"Ticket {prefix} {n}: database connection refused"
    msg["Message-ID"] = f"<{prefix}-{n}@customer.example.org>"
    msg["Date"] = "Fri, 27 Nov 2026 10:00:00 +0000"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    line = f"Our app cannot reach db-{n}.prod.example.org:5432 since the upgrade.\n"
    msg.set_content(line * max(1, size // len(line)))
    return msg.as_bytes(policy=SMTP)


def mailbox_section(server: Dovecot, name: str = "support", **overrides: Any) -> dict[str, Any]:
    """An `[[imap]]` table for `server` (password from $SG_TEST_IMAP_PW_<USER>)."""
    user = overrides.pop("username", "alice")
    section: dict[str, Any] = {
        "name": name,
        "host": server.host,
        "port": server.port,
        "tls": "none",
        "username": user,
        "password_env": f"SG_TEST_IMAP_PW_{user.upper()}",
        "poll_interval": 0.5,
        "batch_size": 25,
    }
    section.update(overrides)
    return section


def password_env(server: Dovecot) -> dict[str, str]:
    return {f"SG_TEST_IMAP_PW_{user.upper()}": pw for user, pw in server.users.items()}


def folder_state(
    server: Dovecot, folder: str = "INBOX", *, user: str = "alice"
) -> dict[int, set[bytes]]:
    """UID -> flags of every message in `folder`, read by a separate client."""
    client = server.client(user)
    client.select_folder(folder, readonly=True)
    flags = client.get_flags(client.search("ALL"))
    return {uid: set(f) for uid, f in flags.items()}
