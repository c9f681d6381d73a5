"""Which UIDs of an IMAP folder a sync fetches, and in which batches.

What is new is decided by the checkpoint (the last stored UID), never by `\\Seen`; a
fresh checkpoint (first start, or the server renumbered the folder) also takes the
history, from `backfill_since` when set, and a backfill widens the scan to older UIDs.
Bodies are then fetched in byte-bounded batches, so a folder of large attachments
cannot exhaust memory. Split from `sync.py`, which fetches, stores and acknowledges
what is planned here; none of this changes anything on the server.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

from imapclient import IMAPClient

from gateway.config import ConfigError, ImapConfig
from gateway.inbound.imap.fetch import fetch_sizes

SIZE_QUERY_CHUNK = 1000


def since_date(value: str, *, where: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: expected a date like 2026-01-31, got {value!r}") from exc


def _chunks(uids: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(uids), size):
        yield list(uids[start : start + size])


def sizes(client: IMAPClient, uids: Sequence[int], *, small: int) -> dict[int, int]:
    """A size per UID for byte-bounded batches: RFC822.SIZE for messages larger than
    `small`, and `small` (an upper bound) for all others.

    One SEARCH LARGER finds the few large messages; asking every message's size instead
    took a tenth of the time of fetching the bodies of a folder of ordinary mail.
    """
    if not uids:
        return {}
    criteria: list[Any] = ["UID", f"{uids[0]}:{uids[-1]}", "LARGER", small]
    wanted = set(uids)
    large = [u for u in client.search(criteria) if u in wanted]
    found = dict.fromkeys(uids, small)
    for chunk in _chunks(large, SIZE_QUERY_CHUNK):
        found.update(fetch_sizes(client, chunk))
    return found


def batches(
    uids: Sequence[int], size_of: dict[int, int], *, max_count: int, max_bytes: int
) -> Iterator[list[int]]:
    """Consecutive runs of at most `max_count` UIDs and (unless one message alone is
    bigger) `max_bytes`, so a folder of large attachments cannot exhaust memory."""
    batch: list[int] = []
    total = 0
    for uid in uids:
        size = size_of.get(uid, 0)
        if batch and (len(batch) >= max_count or total + size > max_bytes):
            yield batch
            batch, total = [], 0
        batch.append(uid)
        total += size
    if batch:
        yield batch


def _uids_above(client: IMAPClient, floor: int) -> list[int]:
    # "UID n:*" always matches the highest UID even when it is below n, hence the filter.
    return [u for u in client.search(["UID", f"{floor + 1}:*"]) if u > floor]


def _history(client: IMAPClient, floor: int, since: date | None) -> list[int]:
    if floor <= 0:
        return []
    criteria: list[Any] = ["UID", f"1:{floor}"]
    if since is not None:
        criteria += ["SINCE", since]
    return [u for u in client.search(criteria) if u <= floor]


def plan(
    client: IMAPClient,
    cfg: ImapConfig,
    last_uid: int | None,
    uidnext: int,
    *,
    since: date | None,
    rescan: bool,
) -> tuple[list[int], int]:
    """(UIDs to fetch in ascending order, UID the checkpoint may reach when all are done)."""
    if last_uid is None:
        floor = max(uidnext - 1, 0)
        if since is None and cfg.backfill_since:
            since = since_date(cfg.backfill_since, where=f"[[imap]] {cfg.name} backfill_since")
        wanted = set(_history(client, floor, since)) | set(_uids_above(client, floor))
    else:
        floor = last_uid
        wanted = set(_uids_above(client, floor))
        if rescan or since is not None:
            wanted |= set(_history(client, floor, since))
    return sorted(wanted), floor
