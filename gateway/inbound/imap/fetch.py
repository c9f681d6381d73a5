"""FETCH bodies and sizes without running every response through a general parser.

imapclient's `fetch` tokenises each response in Python, which costs about as much as
reading it off the socket; during a backfill it competed with the store thread for the
interpreter and halved the rate. A FETCH of `BODY.PEEK[]` or `RFC822.SIZE` for known
UIDs almost always comes back in one of two fixed shapes, so those are matched with one
regular expression each; so is the flags-only update a server sends when another
connection changed flags (another mail client, or a server that reports our own
`.SILENT` flags all the same), which is skipped, as the general path would drop it.
Anything else in the response (other unsolicited data, the items in another order, a
NIL body) sends the whole response to imapclient's own parser, so the fast path can
only be faster, never different.

The command goes through the same imaplib calls imapclient's `fetch` makes, without
the protocol trace imapclient asks imaplib to format when nobody would read it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from imapclient.response_parser import parse_fetch_response

V = TypeVar("V")

_IMAPLIB_LOG = logging.getLogger("imapclient.imaplib")

BODY = b"BODY[]"
SIZE = b"RFC822.SIZE"

# "12 (UID 4711 BODY[] {4449}" followed by the literal and ")"; or the UID after it.
_BODY_HEAD = re.compile(rb"\d+ \((?:UID (\d+) )?BODY\[\] \{(\d+)\}")
_BODY_TAIL = re.compile(rb"(?: UID (\d+))?\)")
# What a server says when another connection changed flags: "7 (FLAGS (\Seen))".
_FLAGS_LINE = re.compile(rb"\d+ \((?:UID \d+ )?FLAGS \([^()]*\)(?: UID \d+)?\)")
_SIZE_LINE = re.compile(rb"\d+ \((?:UID (\d+) RFC822\.SIZE (\d+)|RFC822\.SIZE (\d+) UID (\d+))\)")


@contextmanager
def untraced(client: IMAPClient) -> Iterator[Any]:
    """imaplib, without the protocol trace nobody would read.

    imapclient sets imaplib's debug level to 5 to route its messages to the
    `imapclient.imaplib` logger; at that level imaplib formats a repr of every line and
    response, bodies included, only for the logger to drop it: two thirds of the CPU
    time of fetching bodies. The trace is kept whenever that logger would print it.
    """
    imap = client._imap
    level = imap.debug
    if not _IMAPLIB_LOG.isEnabledFor(logging.DEBUG):
        imap.debug = 0
    try:
        yield imap
    finally:
        imap.debug = level


def _send_fetch(client: IMAPClient, uids: Sequence[int], items: str) -> Any:
    with untraced(client) as imap:
        return imap._command("UID", "FETCH", ",".join(str(int(u)) for u in uids), items)


def _read_fetch(client: IMAPClient, tag: Any) -> list[Any]:
    with untraced(client) as imap:
        typ, data = imap._command_complete("FETCH", tag)
        if typ != "OK":
            raise IMAPClientError(f"FETCH failed: {data!r}")
        _typ, data = imap._untagged_response(typ, data, "FETCH")
    return list(data)


def _parsed(data: list[Any]) -> dict[int, dict[bytes, Any]]:
    """imapclient's reading of the response, keyed by the UID each item states.

    imapclient would fall back to the sequence number for an item without a UID; such
    an item (unsolicited, or from a server that breaks RFC 3501) is dropped instead, so
    a body can never be filed, and then flagged, under the wrong UID.
    """
    parsed = parse_fetch_response(data, normalise_times=False, uid_is_key=False)
    return {int(item[b"UID"]): item for item in parsed.values() if b"UID" in item}


def _read(
    data: list[Any],
    uids: Sequence[int],
    fast: Callable[[list[Any]], dict[int, V] | None],
    general: Callable[[dict[int, dict[bytes, Any]]], dict[int, V]],
) -> dict[int, V]:
    """A FETCH response read by `fast` or else by imapclient's parser and `general`;
    only the UIDs asked for come back."""
    found = fast(data)
    if found is None:
        found = general(_parsed(data))
    wanted = set(uids)
    return {uid: value for uid, value in found.items() if uid in wanted}


class BodyFetch:
    """A UID FETCH of bodies, sent at once and read when `result` is called.

    In between, the server prepares the response while the caller works on the batch
    before (IMAP allows a client to send before reading). No other command may be sent
    until the result is read: imaplib files every untagged FETCH under one name, and a
    second command would take this one's bodies. That goes for a second FETCH too: a
    server may run pipelined FETCHes side by side and interleave their answers (Dovecot
    does; the bodies of the second then came with the first and were dropped as not
    asked for).
    """

    def __init__(self, client: IMAPClient, uids: Sequence[int]) -> None:
        self.client, self.uids = client, list(uids)
        self._tag = _send_fetch(client, self.uids, "(BODY.PEEK[])") if self.uids else None

    def result(self) -> dict[int, bytes]:
        """UID -> raw message for those of the UIDs the server still has."""
        if self._tag is None:
            return {}
        tag, self._tag = self._tag, None
        return _read(_read_fetch(self.client, tag), self.uids, bodies_from, _bodies)


def fetch_bodies(client: IMAPClient, uids: Sequence[int]) -> dict[int, bytes]:
    """UID -> raw message for those of `uids` the server still has."""
    return BodyFetch(client, uids).result()


def _bodies(parsed: dict[int, dict[bytes, Any]]) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    for uid, item in parsed.items():
        if BODY not in item:
            continue
        if item[BODY] is None:
            raise IMAPClientError(f"the server returned no body for UID {uid}")
        found[uid] = bytes(item[BODY])
    return found


def bodies_from(data: list[Any]) -> dict[int, bytes] | None:
    """The bodies in imaplib's FETCH data, or None if any part is not the plain shape."""
    found: dict[int, bytes] = {}
    i, n = 0, len(data)
    while i < n:
        element = data[i]
        if isinstance(element, bytes) and _FLAGS_LINE.fullmatch(element):
            i += 1  # flags set meanwhile: not a body
            continue
        if not isinstance(element, tuple) or len(element) != 2 or i + 1 >= n:
            return None
        head, literal = element
        tail = data[i + 1]
        m = _BODY_HEAD.fullmatch(head)
        t = _BODY_TAIL.fullmatch(tail) if isinstance(tail, bytes) else None
        if m is None or t is None or int(m[2]) != len(literal) or (m[1] is None) == (t[1] is None):
            return None
        found[int(m[1] or t[1])] = bytes(literal)
        i += 2
    return found


def fetch_sizes(client: IMAPClient, uids: Sequence[int]) -> dict[int, int]:
    """UID -> RFC822.SIZE (no bodies are sent)."""
    if not uids:
        return {}
    data = _read_fetch(client, _send_fetch(client, uids, "(RFC822.SIZE)"))
    return _read(data, uids, sizes_from, _sizes)


def _sizes(parsed: dict[int, dict[bytes, Any]]) -> dict[int, int]:
    return {uid: int(item.get(SIZE, 0)) for uid, item in parsed.items()}


def sizes_from(data: list[Any]) -> dict[int, int] | None:
    """The sizes in imaplib's FETCH data, or None if any line is not the plain shape."""
    found: dict[int, int] = {}
    for line in data:
        m = _SIZE_LINE.fullmatch(line) if isinstance(line, bytes) else None
        if m is None:
            return None
        if m[1] is not None:
            found[int(m[1])] = int(m[2])
        else:
            found[int(m[4])] = int(m[3])
    return found
