"""FETCH bodies and sizes without running every response through a general parser.

imapclient's `fetch` tokenises each response in Python, which costs about as much as
reading it off the socket; during a backfill it competed with the store thread for the
interpreter and halved the rate. A FETCH of `BODY.PEEK[]` or `RFC822.SIZE` for known
UIDs almost always comes back in one of two fixed shapes, so those are matched with one
regular expression each. Anything else in the response (an unsolicited FLAGS update,
the items in another order, a NIL body) sends the whole response to imapclient's own
parser, so the fast path can only be faster, never different.

The command goes through the same imaplib calls imapclient's `fetch` makes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from imapclient.response_parser import parse_fetch_response

V = TypeVar("V")

BODY = b"BODY[]"
SIZE = b"RFC822.SIZE"

# "12 (UID 4711 BODY[] {4449}" followed by the literal and ")"; or the UID after it.
_BODY_HEAD = re.compile(rb"\d+ \((?:UID (\d+) )?BODY\[\] \{(\d+)\}")
_BODY_TAIL = re.compile(rb"(?: UID (\d+))?\)")
_SIZE_LINE = re.compile(rb"\d+ \((?:UID (\d+) RFC822\.SIZE (\d+)|RFC822\.SIZE (\d+) UID (\d+))\)")


def _uid_fetch(client: IMAPClient, uids: Sequence[int], items: str) -> list[Any]:
    imap = client._imap
    tag = imap._command("UID", "FETCH", ",".join(str(int(u)) for u in uids), items)
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


def _fetch(
    client: IMAPClient,
    uids: Sequence[int],
    items: str,
    fast: Callable[[list[Any]], dict[int, V] | None],
    general: Callable[[dict[int, dict[bytes, Any]]], dict[int, V]],
) -> dict[int, V]:
    """One UID FETCH, read by `fast` or else by imapclient's parser and `general`;
    only the UIDs asked for come back."""
    if not uids:
        return {}
    data = _uid_fetch(client, uids, items)
    found = fast(data)
    if found is None:
        found = general(_parsed(data))
    wanted = set(uids)
    return {uid: value for uid, value in found.items() if uid in wanted}


def fetch_bodies(client: IMAPClient, uids: Sequence[int]) -> dict[int, bytes]:
    """UID -> raw message for those of `uids` the server still has."""
    return _fetch(client, uids, "(BODY.PEEK[])", bodies_from, _bodies)


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
    return _fetch(client, uids, "(RFC822.SIZE)", sizes_from, _sizes)


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
