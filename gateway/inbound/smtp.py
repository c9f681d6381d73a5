"""The SMTP front door (aiosmtpd): validate, store durably, then answer 250.

Handlers stay thin: RCPT checks the recipient against the configured list (never an
open relay: anything else is 550 at RCPT time; postmaster is always accepted, RFC 5321
4.5.1) and caps a transaction at 100 recipients, DATA hands the bytes to `ingest` in a
worker thread so one slow commit does not stall other connections, and only a
committed ingest earns a 250. A storage error answers 451 so the sending MTA keeps the
message and retries; the size cap is enforced with 552. What a client may cost us
(connections, AUTH guesses, DATA in memory) is bounded by `session` and `guard`.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import ssl
from collections.abc import Callable
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from sqlalchemy.engine import Engine

from gateway.config import Config, ConfigError, SmtpConfig
from gateway.inbound.guard import AuthThrottle, ByteBudget, ConnectionLimiter, DataPacer
from gateway.inbound.ingest import IngestItem
from gateway.inbound.session import FrontDoorGuard, GuardedSMTP, redact
from gateway.inbound.writer import GroupCommitWriter, IngestFn

log = logging.getLogger(__name__)

# RFC 5321 4.5.3.1.8: a server must accept at least 100 recipients per transaction.
MAX_RECIPIENTS = 100

__all__ = ["RecipientPolicy", "make_controller", "redact"]


class RecipientPolicy:
    """Which envelope recipients we accept: exact addresses and whole @domains.

    Postmaster, bare or at any domain we receive for, is always accepted (RFC 5321
    4.5.1 forbids refusing it).
    """

    def __init__(self, recipients: list[str]) -> None:
        self.addresses = {r.lower() for r in recipients if not r.startswith("@")}
        self.domains = {r[1:].lower() for r in recipients if r.startswith("@")}
        self.own_domains = self.domains | {a.rpartition("@")[2] for a in self.addresses}

    def accepts(self, address: str) -> bool:
        addr = address.strip().lower()
        if addr in self.addresses or addr == "postmaster":
            return True
        local, at, domain = addr.rpartition("@")
        if at and local == "postmaster" and domain in self.own_domains:
            return True
        return bool(at) and domain in self.domains


class IngestHandler:
    """aiosmtpd handler: RCPT policy and durable DATA."""

    def __init__(self, engine: Engine, config: SmtpConfig, *, ingest_fn: IngestFn | None = None):
        self.engine = engine
        self.policy = RecipientPolicy(config.recipients)
        self.writer = GroupCommitWriter(engine, ingest_fn=ingest_fn)

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        if not self.policy.accepts(address):
            log.info("rejected recipient %s", redact(address))
            return "550 5.1.1 Recipient not accepted here (relaying denied)"
        # A custom handle_RCPT must record the recipient itself.
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if isinstance(raw, str):  # pragma: no cover - decode_data is off
            raw = raw.encode("utf-8", "surrogateescape")
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        item = IngestItem(
            raw=raw,
            source=f"smtp:{peer}",
            envelope_from=envelope.mail_from,
            envelope_to=tuple(envelope.rcpt_tos),
        )
        try:
            result = await self.writer.submit(item)
        except Exception as exc:
            log.error("storage failed, answering 451: %s: %s", type(exc).__name__, exc)
            return "451 4.3.0 Temporary storage failure, please retry later"
        note = " (duplicate)" if result.duplicate else ""
        return f"250 2.0.0 Stored as #{result.message_pk}{note}"


TEMP_AUTH_FAILURE = "454 4.7.0 Temporary authentication failure"


class _Authenticator:
    def __init__(self, username: str, password_env: str) -> None:
        self.username = username
        self.password_env = password_env

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        if isinstance(server, GuardedSMTP):
            server.attempted_login = auth_data.login
        password = os.environ.get(self.password_env)
        if not password:  # unset since start-up; never name the variable to a client
            log.error("[smtp] auth_password_env %s is not set; AUTH fails", self.password_env)
            return AuthResult(success=False, handled=False, message=TEMP_AUTH_FAILURE)
        ok = hmac.compare_digest(auth_data.login, self.username.encode()) & hmac.compare_digest(
            auth_data.password, password.encode()
        )
        # handled=False lets aiosmtpd send the 235/535 reply itself.
        return AuthResult(success=bool(ok), handled=False)


def tls_context(config: SmtpConfig, base: Callable[[str], Any]) -> ssl.SSLContext | None:
    if not config.tls_cert:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(str(base(config.tls_cert)), str(base(config.tls_key)))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"[smtp] cannot load tls_cert/tls_key: {exc}") from exc
    return ctx


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


_warned_auth_without_tls = False


def _warn_auth_without_tls_once() -> None:
    global _warned_auth_without_tls
    if not _warned_auth_without_tls:
        _warned_auth_without_tls = True
        log.warning("[smtp] AUTH is required without TLS (allowed on loopback only)")


class _Controller(Controller):
    def __init__(self, handler: IngestHandler, *, guard: FrontDoorGuard, **kwargs: Any) -> None:
        self.guard = guard
        super().__init__(handler, **kwargs)

    def stop(self, no_assert: bool = False) -> None:
        super().stop(no_assert=no_assert)
        # After the listener is gone: let the writer finish what it already accepted.
        self.handler.writer.stop()

    def factory(self) -> SMTP:
        return GuardedSMTP(self.handler, guard=self.guard, **self.SMTP_kwargs)


def make_controller(
    config: Config, engine: Engine, *, port: int | None = None, ingest_fn: IngestFn | None = None
) -> Controller:
    smtp = config.smtp
    handler = IngestHandler(engine, smtp, ingest_fn=ingest_fn)
    kwargs: dict[str, Any] = {
        "data_size_limit": smtp.max_message_size,
        "enable_SMTPUTF8": True,
        "ident": "supportgate ESMTP",
    }
    ctx = tls_context(smtp, config.resolve_path)
    if ctx is not None:
        kwargs["tls_context"] = ctx
        kwargs["require_starttls"] = smtp.require_starttls
    if smtp.auth_required:
        if ctx is None and not _is_loopback(smtp.host):
            raise ConfigError("[smtp] auth_required on a public address needs tls_cert/tls_key")
        if not os.environ.get(smtp.auth_password_env):
            raise ConfigError(
                f"[smtp] auth_required: environment variable {smtp.auth_password_env} "
                "(auth_password_env) is not set"
            )
        if ctx is None:
            _warn_auth_without_tls_once()
        kwargs["authenticator"] = _Authenticator(smtp.auth_username, smtp.auth_password_env)
        kwargs["auth_required"] = True
        kwargs["auth_require_tls"] = ctx is not None
    guard = FrontDoorGuard(
        auth=AuthThrottle(free_failures=smtp.auth_max_failures),
        connections=ConnectionLimiter(
            max_total=smtp.max_connections, max_per_ip=smtp.max_connections_per_ip
        ),
        data=ByteBudget(smtp.max_bytes_in_flight, smtp.bytes_per_ip),
        pacer=DataPacer(smtp.bulk_data_rate),
    )
    return _Controller(
        handler,
        guard=guard,
        hostname=smtp.host,
        port=smtp.port if port is None else port,
        server_hostname=smtp.hostname,
        ready_timeout=10.0,
        **kwargs,
    )
