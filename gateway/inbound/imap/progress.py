"""Progress of a long sync: a bar on the operator's terminal, or log lines when unattended.

The sync reports through the two-method `Progress` protocol so it never knows where
the report goes; rich is imported only when a terminal bar is actually drawn.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

log = logging.getLogger("gateway.inbound.imap.poller")

LOG_EVERY = 1000


class Progress(Protocol):
    """Receives progress of a sync: a terminal bar for backfill, log lines in the poller."""

    def start(self, total: int) -> None: ...

    def advance(self, count: int) -> None: ...


class LogProgress:
    """Progress for unattended runs: a log line per LOG_EVERY messages of a long sync."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.total = 0
        self.done = 0

    def start(self, total: int) -> None:
        self.total, self.done = total, 0
        if total >= LOG_EVERY:
            log.info("imap %s: %d messages to fetch", self.name, total)

    def advance(self, count: int) -> None:
        before, self.done = self.done, self.done + count
        if self.total >= LOG_EVERY and before // LOG_EVERY != self.done // LOG_EVERY:
            log.info("imap %s: fetched %d of %d", self.name, self.done, self.total)


class RichProgress:
    """A terminal progress bar on stderr for `ingest --imap … --since …`."""

    def __init__(self, name: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as Bar

        self.bar = Bar(
            TextColumn(f"imap {name}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self.task: Any = None

    def __enter__(self) -> RichProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def start(self, total: int) -> None:
        self.task = self.bar.add_task("fetch", total=total)

    def advance(self, count: int) -> None:
        self.bar.advance(self.task, count)
