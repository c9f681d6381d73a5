"""Give memory freed by large DATA back to the operating system.

glibc keeps freed heap memory for reuse and, after the first large block is freed,
serves later large blocks from the heap instead of their own mappings; a front door
that once held hundreds of MB of DATA would keep that RSS for good. After a large
message (or an abusive connection) lets go of its bytes, `schedule_trim` asks glibc,
at most once a second, to return free pages (`malloc_trim`). Elsewhere it does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

# Bytes a connection must have given back before a trim is worth its few milliseconds.
TRIM_AFTER_BYTES = 1 << 20
TRIM_DELAY_SECONDS = 1.0


def _load_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


_trim = _load_trim()
_scheduled: set[asyncio.AbstractEventLoop] = set()


def trim_now() -> bool:
    """Return free heap pages to the system; True when glibc gave some back."""
    return bool(_trim(0)) if _trim is not None else False


def schedule_trim(loop: asyncio.AbstractEventLoop, freed: int) -> None:
    """After `freed` bytes were let go, trim once within a second (one pending at most)."""
    if _trim is None or freed < TRIM_AFTER_BYTES or loop in _scheduled:
        return
    _scheduled.add(loop)

    def run() -> None:
        _scheduled.discard(loop)
        trim_now()

    loop.call_later(TRIM_DELAY_SECONDS, run)
