"""Open an authenticated IMAP connection for one `[[imap]]` mailbox.

Connecting is kept apart from syncing so the poller can treat every way a connection
fails (DNS, refused, TLS, wrong password, missing token) as one `ImapConnectError` with
a sentence an operator can act on. Secrets come from the environment or from a token
command at connect time, never from the config file, and never reach a log line:
errors name the variable or the command, not the value. Gmail and Microsoft 365 accept
only OAuth2, so an access token (XOAUTH2) is a first-class alternative to a password.
"""

from __future__ import annotations

import logging
import shlex
import socket
import ssl
import subprocess
from pathlib import Path

from imapclient import IMAPClient, SocketTimeout
from imapclient.exceptions import IMAPClientError, LoginError

from gateway.config import ConfigError, ImapConfig, secret

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 15.0
# Bounds every blocking read outside IDLE, so a connection that died silently (NAT
# timeout, suspended laptop) surfaces as an error instead of hanging forever.
READ_TIMEOUT = 120.0
TOKEN_COMMAND_TIMEOUT = 30.0


class ImapError(Exception):
    """An IMAP mailbox could not be synced; the message is safe to log and show in status."""


class ImapConnectError(ImapError):
    """Connecting or logging in failed; `kind` is "network", "auth" or "config"."""

    def __init__(self, message: str, *, kind: str = "network") -> None:
        super().__init__(message)
        self.kind = kind


def redact(address: str) -> str:
    """`alice@example.com` -> `a***@example.com`, for logs."""
    local, at, domain = address.partition("@")
    if not local:
        return "***"
    return f"{local[0]}***{at}{domain}"


def access_token(cfg: ImapConfig) -> str:
    """The OAuth2 access token from `oauth2_token_env` or `oauth2_token_command`."""
    if cfg.oauth2_token_env:
        return secret(cfg.oauth2_token_env)
    argv = shlex.split(cfg.oauth2_token_command)
    if not argv:
        raise ConfigError(f"[[imap]] {cfg.name}: oauth2_token_command is empty")
    try:
        done = subprocess.run(argv, capture_output=True, timeout=TOKEN_COMMAND_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ImapConnectError(
            f"oauth2_token_command {argv[0]!r} failed: {exc}", kind="auth"
        ) from exc
    if done.returncode != 0:
        # Only the first stderr line, truncated: enough to diagnose, too little to leak.
        first = (done.stderr.decode("utf-8", "replace").strip().splitlines() or [""])[0]
        raise ImapConnectError(
            f"oauth2_token_command {argv[0]!r} exited with {done.returncode}: {first[:200]}",
            kind="auth",
        )
    token = done.stdout.decode("utf-8", "replace").strip()
    if not token:
        raise ImapConnectError(f"oauth2_token_command {argv[0]!r} printed no token", kind="auth")
    return token


def _tls_context(cfg: ImapConfig) -> ssl.SSLContext:
    if not cfg.tls_ca_file:
        return ssl.create_default_context()
    path = Path(cfg.tls_ca_file).expanduser()
    try:
        return ssl.create_default_context(cafile=str(path))
    except (OSError, ssl.SSLError) as exc:
        raise ImapConnectError(
            f"[[imap]] {cfg.name} tls_ca_file {path}: {exc.strerror or exc}", kind="config"
        ) from exc


def _open(cfg: ImapConfig) -> IMAPClient:
    timeout = SocketTimeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT)
    context = _tls_context(cfg) if cfg.tls != "none" else None
    implicit = cfg.tls == "implicit"
    client = IMAPClient(
        cfg.host,
        port=cfg.port,
        ssl=implicit,
        ssl_context=context if implicit else None,
        timeout=timeout,
    )
    if cfg.tls == "starttls":
        client.starttls(context)
    _keepalive(client.socket())
    return client


def _keepalive(sock: socket.socket) -> None:
    """Let the kernel notice, within about two minutes, a peer that vanished while we
    sit in IDLE (NAT timeouts, a rebooted server): the socket then reports an error
    and the poller reconnects, instead of waiting for the next IDLE renewal."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 15), ("TCP_KEEPCNT", 4)):
        option = getattr(socket, name, None)
        if option is not None:  # Linux names; other systems keep their defaults
            sock.setsockopt(socket.IPPROTO_TCP, option, value)


def _login(client: IMAPClient, cfg: ImapConfig) -> None:
    if cfg.password_env:
        client.login(cfg.username, secret(cfg.password_env))
    else:
        client.oauth2_login(cfg.username, access_token(cfg))


def connect(cfg: ImapConfig) -> IMAPClient:
    """A logged-in client for `cfg`, or ImapConnectError saying what went wrong."""
    where = f"{cfg.host}:{cfg.port}"
    user = redact(cfg.username)
    try:
        client = _open(cfg)
    except ImapConnectError:
        raise
    except (OSError, IMAPClientError) as exc:
        raise ImapConnectError(f"cannot connect to {where} (tls={cfg.tls}): {exc}") from exc
    try:
        _login(client, cfg)
    except LoginError as exc:
        close(client)
        how = "password" if cfg.password_env else "XOAUTH2 token"
        raise ImapConnectError(
            f"authentication failed for {user} at {where} ({how} rejected: {exc})", kind="auth"
        ) from exc
    except ConfigError as exc:
        close(client)
        raise ImapConnectError(f"cannot log in {user} at {where}: {exc}", kind="config") from exc
    except ImapConnectError:
        close(client)
        raise
    except (OSError, IMAPClientError) as exc:
        close(client)
        raise ImapConnectError(f"login to {where} as {user} failed: {exc}") from exc
    return client


def close(client: IMAPClient) -> None:
    """Log out politely if the connection still works; never raise, never hang long."""
    try:
        sock = client.socket()
        sock.settimeout(2.0)
        client.logout()
    except Exception:  # a dead connection cannot be logged out of; just drop it
        try:
            client.shutdown()
        except Exception:
            log.debug("imap shutdown after failed logout also failed", exc_info=True)
