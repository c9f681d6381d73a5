"""The screening verdict and its kinds, shared by the checks, the bounce linker and the
loop counters.

It lives apart from `screen.py` because the bounce reader (`bounces.py`) and the loop
counters (`rates.py`) build verdicts too, and `screen.py` imports both of them: a
verdict defined there would make the imports circular.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

BOUNCE = "bounce"
AUTO_REPLY = "auto_reply"
LIST = "list"
SYSTEM_SENDER = "system_sender"
OWN_MAIL = "own_mail"
LOOP = "loop"

# How far a claimed time (a Date, an IMAP server's Received stamp) may precede our own
# arrival time, or run ahead of it, and still be believed.
DATE_MAX_AGE = timedelta(days=7)
DATE_MAX_SKEW = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class ScreenVerdict:
    """Why a message gets no draft. `original_ids` are the Message-IDs a bounce reports."""

    kind: str
    reason: str
    original_ids: tuple[str, ...] = ()
    permanent: bool = False
    diagnostic: str = ""
    recipients: tuple[str, ...] = field(default=())
    # The addresses that failed for good; a mixed report also names delayed ones.
    failed_recipients: tuple[str, ...] = field(default=())
    # A bounce's own Date: no reply sent after it can be the one it reports on.
    written_at: datetime | None = None

    @property
    def text(self) -> str:
        return f"{self.kind}: {self.reason}"


def bracketed(msgid: str) -> str:
    """A Message-ID in angle brackets, as the outbox stores it."""
    return msgid if msgid.startswith("<") else f"<{msgid}>"
