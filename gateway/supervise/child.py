"""What a supervised runner process does to stay out of the front door's way and to
end with the supervisor that started it.

Lower priority: the front door answers 250 only after a commit, so every millisecond
analysis takes from it shows in the accept rate; `os.nice` makes the kernel prefer
the front door whenever both want a core.

The end of the parent: a supervisor killed with SIGKILL cannot stop its children, so
each child holds the read end of a pipe whose only writer is the supervisor, and stops
(finishing its batch and handing back its claims) when the pipe reports end of file.
Polling `os.getppid()` would work too, but a pipe needs no timer and wakes at once.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import IO

log = logging.getLogger(__name__)


def lower_priority(nice: int) -> int:
    """Raise this process's niceness by `nice`; returns the niceness now in effect."""
    if nice <= 0:
        return os.nice(0)
    try:
        return os.nice(nice)
    except OSError as exc:  # a container may forbid it; running at all matters more
        log.warning("could not lower this worker's priority (%s); running at the same", exc)
        return os.nice(0)


def tag_logs(role: str) -> None:
    """Children write to serve's own stderr; each line says which process wrote it."""
    fmt = f"%(asctime)s %(levelname)s [{role} %(process)d] %(name)s: %(message)s"
    for handler in logging.getLogger().handlers:
        handler.setFormatter(logging.Formatter(fmt))


def stop_with_parent(stop: threading.Event, pipe: IO[bytes] | None = None) -> threading.Thread:
    """Set `stop` once `pipe` (stdin by default) reaches end of file."""
    # The raw descriptor, not sys.stdin: a daemon thread blocked inside a buffered
    # reader holds its lock, and interpreter shutdown then aborts on that lock.
    fd = (pipe if pipe is not None else sys.stdin).fileno()

    def watch() -> None:
        try:
            while os.read(fd, 4096):
                pass  # the supervisor never writes; anything read is ignored
        except (OSError, ValueError):
            pass
        if not stop.is_set():
            log.warning("the supervisor is gone; stopping")
            stop.set()

    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.start()
    return thread
