"""How an IMAP failure is worded, grouped and waited out, for the pollers and one-shot syncs.

A poller must keep running through wrong passwords, unreachable servers and flapping
networks, yet tell the operator once per change of state, in words without secrets. So
each failure gets a line for the log and `status` (`describe`), a kind that repeats of
the same problem share (`problem_kind`), and reconnects wait with jittered exponential
backoff (`Backoff`), so many gateways do not reconnect in lockstep. Split from
`poller.py`, which runs the loops these serve.
"""

from __future__ import annotations

import random

from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

from gateway.config import ConfigError, ImapConfig
from gateway.inbound.imap.auth import ImapConnectError, ImapError


def describe(exc: BaseException, cfg: ImapConfig) -> str:
    """One line for the log and `status`: what failed, without secrets."""
    if isinstance(exc, ImapError | ConfigError):
        return str(exc)
    if isinstance(exc, OSError | IMAPClientAbortError):
        detail = str(exc) or type(exc).__name__
        return f"connection to {cfg.host}:{cfg.port} lost: {detail}"
    if isinstance(exc, IMAPClientError):
        return f"IMAP server {cfg.host}:{cfg.port} said no (folder {cfg.folder!r}): {exc}"
    return f"{type(exc).__name__}: {exc}"


def problem_kind(exc: BaseException) -> str:
    """Failures of one kind are logged once: a flapping network is one story, not many."""
    if isinstance(exc, ImapConnectError):
        return exc.kind
    if isinstance(exc, OSError | IMAPClientAbortError):
        return "network"
    if isinstance(exc, IMAPClientError):
        return "server"
    if isinstance(exc, ConfigError):
        return "config"
    return type(exc).__name__


class Backoff:
    """Exponential delays with jitter, so many gateways do not reconnect in lockstep."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial, self.maximum, self.failures = initial, maximum, 0

    def next_delay(self) -> float:
        delay = min(self.maximum, self.initial * 2 ** min(self.failures, 30))
        self.failures += 1
        return delay * random.uniform(0.75, 1.0)

    def reset(self) -> int:
        failures, self.failures = self.failures, 0
        return failures
