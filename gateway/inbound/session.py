"""aiosmtpd's SMTP protocol with the front door's budgets applied (see `guard`).

Three places of aiosmtpd's protocol decide what a client can cost us, so they are
overridden here and nowhere else: the start of a connection (total and per-address
caps, 421 when over), AUTH (slowed to one attempt a second per address after a few
failures, the connection dropped after a few more, every failure logged), and DATA
(its bytes count against a budget shared by all connections and a share of it per
client address, 452 when either is spent; past a message's first megabyte, reading is
paced on a clock shared by all connections, so huge DATA cannot starve ordinary mail).
DATA is still held in memory rather than spooled to disk: `ingest` stores and parses
the whole message anyway, and the shared budget bounds what all connections hold.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, syntax

from gateway.inbound.guard import AuthThrottle, ByteBudget, ConnectionLimiter, DataPacer
from gateway.inbound.memory import schedule_trim

log = logging.getLogger(__name__)

# Failed AUTHs a throttled connection may still make before it is closed.
DROP_AFTER_SLOW_FAILURES = 3
# How often (seconds) a refused connection is logged, so a flood cannot flood the log.
REFUSAL_LOG_INTERVAL = 10.0
# Bulk bytes read between two visits to the pacer.
PACE_CHUNK = 64 * 1024
# Bytes of DATA read between two bookings against the budgets.
BUDGET_CHUNK = 16 * 1024

# `<local@domain>` in its plainest form (dot-atoms of ASCII, a host name), then the end
# or blanks: nearly every MAIL FROM and RCPT TO there is. See `GuardedSMTP._getaddr`.
_PLAIN_PATH = re.compile(
    r"[ \t]*<([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>[ \t]*"
)

TOO_LONG = "500 5.5.6 Line too long (see RFC 5321 4.5.3.1.6)"
TOO_MUCH = "552 5.3.4 Error: Too much mail data"
NO_ROOM = "452 4.3.1 Insufficient system storage, please retry later"


def redact(addr: str) -> str:
    """a***@example.com: enough to correlate in logs, not enough to harvest."""
    local, _, domain = addr.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def loggable_login(login: bytes | str | None) -> str:
    text = login.decode("utf-8", "replace") if isinstance(login, bytes) else (login or "")
    return redact(text) if "@" in text else repr(text[:64])


@dataclass
class FrontDoorGuard:
    """The budgets one listener shares across all of its connections."""

    auth: AuthThrottle
    connections: ConnectionLimiter
    data: ByteBudget
    pacer: DataPacer
    last_refusal_log: float = float("-inf")


class GuardedSMTP(SMTP):
    """One client connection; `guard` is shared with every other connection."""

    def __init__(self, handler: Any, *, guard: FrontDoorGuard, **kwargs: Any) -> None:
        # aiosmtpd warns (and logs) on every connection when AUTH is required without
        # TLS; `make_controller` allows that only on loopback and says so once, so the
        # flag is set after the constructor instead of through it.
        auth_required = bool(kwargs.pop("auth_required", False))
        super().__init__(handler, **kwargs)
        self._auth_required = auth_required
        self.guard = guard
        # Set by the authenticator to the login it just checked.
        self.attempted_login: bytes | None = None
        self._slow_failures = 0

    @property
    def client_ip(self) -> str:
        peer = self.session.peer if self.session is not None else None
        return str(peer[0]) if isinstance(peer, tuple) else str(peer)

    async def _handle_client(self) -> None:
        ip = self.client_ip
        refused = self.guard.connections.acquire(ip)
        if refused is not None:
            now = time.monotonic()
            if now - self.guard.last_refusal_log >= REFUSAL_LOG_INTERVAL:
                self.guard.last_refusal_log = now
                log.warning("refusing connection from %s: %s", ip, refused)
            await self.push(f"421 4.7.0 {self.hostname} {refused}, try again later")
            if self.transport is not None:
                self.transport.close()
            return
        try:
            await super()._handle_client()
        finally:
            self.guard.connections.release(ip)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's address parser, with a fast path for the plainest paths.

        The stock parser (the email package's full RFC 5322 grammar) was a third of the
        front door's CPU per message, twice over (MAIL and RCPT). A path the pattern
        takes whole gets the same answer the grammar would give (a property test checks
        this); anything else (quoted local parts, source routes, comments, literals,
        non-ASCII, `<>`) still goes to the grammar.
        """
        match = _PLAIN_PATH.match(arg)
        if match is None or arg.startswith("(", match.end()):
            return super()._getaddr(arg)
        address = match.group(1)
        if self.local_part_limit and address.rindex("@") > self.local_part_limit:
            return None, None
        return address, arg[match.end() :]

    @syntax("AUTH <mechanism>")
    async def smtp_AUTH(self, arg: str) -> None:
        throttle = self.guard.auth
        ip = self.client_ip
        now = time.monotonic()
        throttled = throttle.failures(ip, now) >= throttle.free_failures
        delay = throttle.wait(ip, now)
        if delay > 0:
            await asyncio.sleep(delay)
        assert self.session is not None
        was_authenticated = bool(self.session.authenticated)
        self.attempted_login = None
        await super().smtp_AUTH(arg)
        if self.attempted_login is None:
            return  # no credentials were checked (syntax, mechanism, aborted)
        if self.session.authenticated and not was_authenticated:
            throttle.succeeded(ip)
            return
        count = throttle.failed(ip, time.monotonic())
        log.warning(
            "AUTH failed for login %s from %s (%d recent failure%s from this address)",
            loggable_login(self.attempted_login),
            ip,
            count,
            "" if count == 1 else "s",
        )
        if not throttled:
            return
        self._slow_failures += 1
        if self._slow_failures >= DROP_AFTER_SLOW_FAILURES:
            log.warning("closing connection from %s after repeated AUTH failures", ip)
            await self.push("421 4.7.0 Too many failed authentication attempts, closing")
            if self.transport is not None:
                self.transport.close()

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        self._data_taken = 0
        try:
            content, problem = await self._read_data()
            if problem is not None:
                self._set_post_data_state()
                await self.push(problem)
                return
            self.envelope.content = content
            self.envelope.original_content = content
            status = await self._call_handler_hook("DATA")
            self._set_post_data_state()
            await self.push("250 OK" if status is MISSING else status)
        finally:
            # Also on a dropped connection: the bytes are no longer ours to count.
            self.guard.data.give_back(self._data_taken, self.client_ip)
            schedule_trim(self.loop, self._data_taken)
            self._data_taken = 0

    async def _read_data(self) -> tuple[bytes, str | None]:
        """Read DATA up to the lone dot; return (content, None) or (b"", error reply).

        Like aiosmtpd's own loop, but every byte kept counts against the shared budget,
        and once anything is wrong the rest is read and dropped, never kept. Bytes are
        booked `BUDGET_CHUNK` at a time (and the rest at the end), so a connection holds
        at most that much beyond the budget, and ordinary mail books once.
        """
        buf = bytearray()
        problem: str | None = None
        limit = self.data_size_limit
        pacer = self.guard.pacer
        received = unpaced = unbooked = 0
        at_line_start = True
        try:
            while True:
                try:
                    line = await self._reader.readuntil(b"\r\n")
                except asyncio.LimitOverrunError as exc:
                    line = await self._reader.read(exc.consumed)
                    problem = problem or TOO_LONG
                if at_line_start and line == b".\r\n":
                    break
                received += len(line)
                if received > pacer.free_bytes:
                    unpaced += len(line)
                    if unpaced >= PACE_CHUNK:
                        wait = pacer.delay(unpaced, time.monotonic())
                        unpaced = 0
                        if wait > 0:
                            await asyncio.sleep(wait)
                if problem is None and limit and received > limit:
                    problem = TOO_MUCH
                if problem is None:
                    # RFC 5321 4.5.2: a leading dot was doubled by the client.
                    buf += line[1:] if at_line_start and line.startswith(b".") else line
                    unbooked += len(line)
                    if unbooked >= BUDGET_CHUNK:
                        problem, unbooked = self._book(unbooked), 0
                if problem is not None and buf:
                    buf = self._drop(buf)
                at_line_start = line.endswith(b"\r\n")
            if problem is None and unbooked:
                problem = self._book(unbooked)
                if problem is not None:
                    buf = self._drop(buf)
        except BaseException:
            # A dropped connection leaves this frame in a traceback cycle that only the
            # garbage collector would free; the bytes go now.
            buf.clear()
            raise
        return (b"", problem) if problem else (bytes(buf), None)

    def _book(self, n: int) -> str | None:
        """Count `n` more bytes of this message against the budgets; None if they fit."""
        if self.guard.data.take(n, self.client_ip):
            self._data_taken += n
            return None
        log.warning("DATA budget spent; answering 452 to %s", self.client_ip)
        return NO_ROOM

    def _drop(self, buf: bytearray) -> bytearray:
        """Let go of a message being refused, and of the budget its bytes held."""
        buf.clear()
        self.guard.data.give_back(self._data_taken, self.client_ip)
        schedule_trim(self.loop, self._data_taken)
        self._data_taken = 0
        return bytearray()
