"""The SMTP client side of the sender: one session to the relay, and what a send came to.

Kept apart from `sender.py` so the outbox runner reads apart from the SMTP conversation.
Only `gateway/outbound/sender.py` may import it (`tests/gateway/outbound/test_human_gate.py`
checks this).
"""

from __future__ import annotations

import functools
import logging
import smtplib
import ssl
from dataclasses import dataclass

from gateway import headers as h
from gateway.config import ConfigError, SenderConfig, secret

# Logged under the sender's name, as before the split.
log = logging.getLogger("gateway.outbound.sender")

SENT = "sent"
TEMPORARY = "temporary"
PERMANENT = "permanent"
AMBIGUOUS = "ambiguous"
# Replies sent over one relay session before it is closed and a new one opened.
MAX_PER_SESSION = 50


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one delivery attempt; `detail` is the server's words."""

    kind: str
    detail: str = ""
    refused: tuple[str, ...] = ()


@functools.lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    # Loading the system CA store costs tens of milliseconds: once per process.
    return ssl.create_default_context()


def _connect(cfg: SenderConfig) -> smtplib.SMTP:
    smtp: smtplib.SMTP
    if cfg.tls == "implicit":
        smtp = smtplib.SMTP_SSL(
            cfg.host, cfg.port, timeout=cfg.timeout_seconds, context=_tls_context()
        )
    else:
        smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_seconds)
    smtp.ehlo()
    if cfg.tls == "starttls":
        smtp.starttls(context=_tls_context())
        smtp.ehlo()
    if cfg.username:
        smtp.login(cfg.username, secret(cfg.password_env))
    return smtp


def _reply_text(code: int, text: bytes | str) -> str:
    words = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {h.clean(words, 500)}"


def _connected(cfg: SenderConfig) -> smtplib.SMTP | Outcome:
    """A ready session to the relay, or why there is none (always safe to retry later)."""
    try:
        return _connect(cfg)
    except smtplib.SMTPResponseException as exc:
        kind = PERMANENT if exc.smtp_code >= 500 and exc.smtp_code != 535 else TEMPORARY
        return Outcome(kind, _reply_text(exc.smtp_code, exc.smtp_error))
    except ConfigError as exc:
        return Outcome(TEMPORARY, f"sender not configured: {exc}")
    except (OSError, smtplib.SMTPException) as exc:
        return Outcome(TEMPORARY, f"cannot reach relay {cfg.host}:{cfg.port}: {exc}")
    except Exception as exc:  # no message was offered yet: safe to retry
        return Outcome(TEMPORARY, f"unexpected error before the message was sent: {_name(exc)}")


class RelaySession:
    """One SMTP session to the relay, reused for the sends of one run.

    A connection, TLS handshake and AUTH per reply is what gets a bulk notice throttled
    by a relay, so consecutive sends share a session (at most MAX_PER_SESSION). A session
    left idle by the relay may have been closed at its end; a reused session that fails
    before the relay took the message is therefore dropped and the message tried once
    more on a fresh one, which is safe for the same reason a retry is. Any outcome other
    than "sent" ends the session, so a confused connection never carries the next reply.
    """

    def __init__(self, cfg: SenderConfig) -> None:
        self.cfg = cfg
        self.smtp: smtplib.SMTP | None = None
        self.used = 0
        self.connections = 0

    def deliver(self, payload: bytes, sender: str, recipients: list[str]) -> Outcome:
        """One SMTP transaction; classifies every way it can end."""
        if not recipients:
            return Outcome(PERMANENT, "no recipients; not sent")
        reused = self.smtp is not None
        outcome = self._attempt(payload, sender, recipients)
        if reused and outcome.kind == TEMPORARY:
            log.info("relay session went stale (%s); reconnecting", outcome.detail[:200])
            outcome = self._attempt(payload, sender, recipients)
        if outcome.kind != SENT or self.used >= MAX_PER_SESSION:
            self.close()
        return outcome

    def _attempt(self, payload: bytes, sender: str, recipients: list[str]) -> Outcome:
        if self.smtp is None:
            session = _connected(self.cfg)
            if isinstance(session, Outcome):
                return session
            self.smtp, self.used = session, 0
            self.connections += 1
        outcome = _transaction(self.smtp, payload, sender, recipients)
        self.used += 1
        if outcome.kind != SENT:
            self.close()
        return outcome

    def close(self) -> None:
        if self.smtp is None:
            return
        smtp, self.smtp = self.smtp, None
        try:
            smtp.quit()
        except Exception:
            smtp.close()

    def __enter__(self) -> RelaySession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _name(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def smtputf8_needed_by(sender: str, recipients: list[str]) -> str | None:
    """Whose address needs SMTPUTF8 ("recipient" or "sender address"), if anyone's."""
    if not all(r.isascii() for r in recipients):
        return "recipient"
    return None if sender.isascii() else "sender address"


def _transaction(smtp: smtplib.SMTP, payload: bytes, sender: str, rcpts: list[str]) -> Outcome:
    try:
        options: list[str] = []
        needed_by = smtputf8_needed_by(sender, rcpts)
        if needed_by is not None:
            if not smtp.has_extn("smtputf8"):
                return Outcome(
                    PERMANENT, f"{needed_by} needs SMTPUTF8, which the relay does not offer"
                )
            options = ["SMTPUTF8", "BODY=8BITMIME"] if smtp.has_extn("8bitmime") else ["SMTPUTF8"]
        code, resp = smtp.mail(sender, options)
        if code != 250:
            return _status(code, resp)
        refused: dict[str, tuple[int, str]] = {}
        for rcpt in rcpts:
            code, resp = smtp.rcpt(rcpt)
            if code not in (250, 251):
                refused[rcpt] = (code, _reply_text(code, resp))
        if len(refused) == len(rcpts):
            smtp.rset()
            codes = [c for c, _ in refused.values()]
            kind = PERMANENT if all(c >= 500 for c in codes) else TEMPORARY
            return Outcome(kind, "; ".join(f"{r}: {t}" for r, (_, t) in refused.items()))
    except smtplib.SMTPServerDisconnected as exc:
        return Outcome(TEMPORARY, f"relay disconnected before the message was sent: {exc}")
    except (OSError, smtplib.SMTPException) as exc:
        return Outcome(TEMPORARY, f"relay error before the message was sent: {exc}")
    except Exception as exc:  # DATA not begun: nothing was sent, safe to retry
        return Outcome(TEMPORARY, f"unexpected error before the message was sent: {_name(exc)}")
    try:
        code, resp = smtp.data(payload)
    except smtplib.SMTPDataError as exc:  # the relay said no, in words: nothing was taken
        return _status(exc.smtp_code, exc.smtp_error)
    except (OSError, smtplib.SMTPException) as exc:
        # The body may have reached the relay; resending could duplicate it.
        return Outcome(AMBIGUOUS, f"connection lost during DATA, outcome unknown: {exc}")
    except Exception as exc:  # the same doubt, whatever failed
        return Outcome(AMBIGUOUS, f"error during DATA, outcome unknown: {_name(exc)}")
    if code != 250:
        return _status(code, resp)
    return Outcome(SENT, _reply_text(code, resp), tuple(sorted(refused)))


def _status(code: int, resp: bytes | str) -> Outcome:
    return Outcome(PERMANENT if code >= 500 else TEMPORARY, _reply_text(code, resp))
