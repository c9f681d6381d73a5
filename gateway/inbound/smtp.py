"""The SMTP front door (aiosmtpd): validate, store durably, then answer 250.

Handlers stay thin: RCPT checks the recipient against the configured list (never an
open relay: anything else is 550 at RCPT time), DATA hands the bytes to `ingest` in a
worker thread so one slow commit does not stall other connections, and only a
committed ingest earns a 250. A storage error answers 451 so the sending MTA keeps the
message and retries; the size cap is enforced by aiosmtpd itself with 552.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import queue
import ssl
import threading
import warnings
from collections.abc import Callable
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from sqlalchemy.engine import Engine

from gateway.config import Config, ConfigError, SmtpConfig, secret
from gateway.inbound.ingest import IngestItem, IngestResult, ingest_batch

log = logging.getLogger(__name__)

IngestFn = Callable[..., IngestResult]


def redact(addr: str) -> str:
    """a***@example.com: enough to correlate in logs, not enough to harvest."""
    local, _, domain = addr.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


class RecipientPolicy:
    """Which envelope recipients we accept: exact addresses and whole @domains."""

    def __init__(self, recipients: list[str]) -> None:
        self.addresses = {r.lower() for r in recipients if not r.startswith("@")}
        self.domains = {r[1:].lower() for r in recipients if r.startswith("@")}

    def accepts(self, address: str) -> bool:
        addr = address.strip().lower()
        if addr in self.addresses:
            return True
        _, at, domain = addr.rpartition("@")
        return bool(at) and domain in self.domains


_Job = tuple[IngestItem, asyncio.AbstractEventLoop, "asyncio.Future[IngestResult]"]


class GroupCommitWriter:
    """One writer thread; DATA commands that arrive together share one commit.

    The SMTP loop never blocks on the database: each DATA hands its message to this
    thread and awaits a future. The thread takes whatever has queued up (up to
    `max_batch`) and stores it in one transaction, so eight busy connections pay for
    one fsync instead of eight. Every future resolves only after the commit, so 250
    still means durable. If a batch fails, its messages are retried one by one so a
    single poisonous message cannot make its neighbours answer 451.
    """

    def __init__(self, engine: Engine, *, ingest_fn: IngestFn | None = None, max_batch: int = 64):
        self.engine = engine
        self.ingest_fn = ingest_fn
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)
        self._thread.start()

    async def submit(self, item: IngestItem) -> IngestResult:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[IngestResult] = loop.create_future()
        self._queue.put((item, loop, future))
        return await future

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            batch = [job]
            stopping = False
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
            self._commit(batch)
            if stopping:
                return

    def _commit(self, batch: list[_Job]) -> None:
        try:
            if self.ingest_fn is not None:
                results = [self._ingest_one(item) for item, _, _ in batch]
            else:
                results = ingest_batch(self.engine, [item for item, _, _ in batch])
        except Exception as exc:
            if len(batch) > 1:
                for job in batch:
                    self._commit([job])
                return
            _, loop, future = batch[0]
            loop.call_soon_threadsafe(_resolve, future, None, exc)
            return
        for (_, loop, future), result in zip(batch, results, strict=True):
            loop.call_soon_threadsafe(_resolve, future, result, None)

    def _ingest_one(self, item: IngestItem) -> IngestResult:
        assert self.ingest_fn is not None
        return self.ingest_fn(
            self.engine,
            item.raw,
            source=item.source,
            envelope_from=item.envelope_from,
            envelope_to=list(item.envelope_to),
        )


def _resolve(
    future: asyncio.Future[IngestResult], result: IngestResult | None, exc: BaseException | None
) -> None:
    if future.done():  # the client went away and the DATA task was cancelled
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        assert result is not None
        future.set_result(result)


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


class _Authenticator:
    def __init__(self, username: str, password_env: str) -> None:
        self.username = username
        self.password_env = password_env

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = hmac.compare_digest(auth_data.login, self.username.encode()) & hmac.compare_digest(
            auth_data.password, secret(self.password_env).encode()
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


class _Controller(Controller):
    def stop(self, no_assert: bool = False) -> None:
        super().stop(no_assert=no_assert)
        # After the listener is gone: let the writer finish what it already accepted.
        self.handler.writer.stop()

    def factory(self) -> SMTP:
        # AUTH without TLS is only allowed on loopback (checked above); aiosmtpd warns
        # about it on every connection, which would flood the log.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            return super().factory()


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
        kwargs["authenticator"] = _Authenticator(smtp.auth_username, smtp.auth_password_env)
        kwargs["auth_required"] = True
        kwargs["auth_require_tls"] = ctx is not None
    return _Controller(
        handler,
        hostname=smtp.host,
        port=smtp.port if port is None else port,
        server_hostname=smtp.hostname,
        ready_timeout=10.0,
        **kwargs,
    )
