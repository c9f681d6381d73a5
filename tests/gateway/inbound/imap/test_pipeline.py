"""The order a run goes through, whatever stores and flags it: commit → flag → checkpoint.

Pure tests with a store and a flag queue whose futures the test resolves by hand; the
Dovecot tests (`test_ack.py`, `test_sync_cycle.py`, `test_store_process.py`) show the
same end to end.
"""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from imapclient.exceptions import IMAPClientError

import gateway.inbound.imap.pipeline as imap_pipeline
from gateway.config import parse_config
from gateway.inbound.imap.pipeline import Pipeline
from gateway.inbound.ingest import IngestResult


class HandStore:
    """Each run's commit is a future the test completes."""

    def __init__(self) -> None:
        self.runs: list[tuple[list[tuple[int, bytes]], Future[Any]]] = []

    def submit(self, items: list[tuple[int, bytes]]) -> Future[Any]:
        future: Future[Any] = Future()
        self.runs.append((items, future))
        return future

    def commit(
        self, index: int, *, stored: int | None = None, error: Exception | None = None
    ) -> None:
        items, future = self.runs[index]
        count = len(items) if stored is None else stored
        results = [IngestResult(uid, False, f"k{uid}") for uid, _raw in items[:count]]
        future.set_result((results, error))

    def close(self) -> None:
        pass


class HandFlagger:
    """The sync's flag queue: the test answers its STOREs, or `flush` answers them all."""

    def __init__(self) -> None:
        self.flagged: list[tuple[list[int], Future[None]]] = []

    def submit(self, uids: list[int]) -> Future[None]:
        future: Future[None] = Future()
        self.flagged.append((uids, future))
        return future

    def flush(self) -> None:
        for _uids, future in self.flagged:
            if not future.done():
                future.set_result(None)


class Checkpoints:
    def __init__(self) -> None:
        self.done_uids: list[int] = []

    def done(self, uid: int) -> None:
        self.done_uids.append(uid)


class Server:
    """The fetching connection: records what the sync flags on it."""

    def __init__(self) -> None:
        self.flags: list[list[int]] = []

    def add_flags(self, uids: list[int], flags: list[bytes], silent: bool) -> None:
        self.flags.append(list(uids))


def batch(first: int, count: int = 2) -> tuple[list[int], list[tuple[int, bytes]]]:
    uids = list(range(first, first + count))
    return uids, [(uid, b"raw") for uid in uids]


@pytest.fixture
def parts(tmp_path: Path) -> tuple[Pipeline, HandStore, HandFlagger, Checkpoints, Server]:
    cfg = parse_config(
        {
            "storage": {"url": "sqlite:///:memory:"},
            "imap": [
                {
                    "name": "m",
                    "host": "h",
                    "username": "u",
                    "password_env": "P",
                    "after_store": "keyword",
                    "keyword": "$Stored",
                }
            ],
        },
        base_dir=tmp_path,
    ).imap[0]
    store, flags, ckpt, server = HandStore(), HandFlagger(), Checkpoints(), Server()
    pipeline = Pipeline(server, cfg, ckpt, store, flags)  # type: ignore[arg-type]
    return pipeline, store, flags, ckpt, server


def test_flags_follow_the_commit_and_the_checkpoint_follows_the_flags(
    parts: tuple[Pipeline, HandStore, HandFlagger, Checkpoints, Server],
) -> None:
    pipeline, store, flags, ckpt, server = parts
    pipeline.add(*batch(1))  # an idle store takes the first batch at once
    pipeline.add(*batch(3))
    assert len(store.runs) == 1 and flags.flagged == []  # not committed: nothing flagged

    store.commit(0)
    pipeline.add(*batch(5))
    assert [uids for uids, _f in flags.flagged] == [[1, 2]] and ckpt.done_uids == []

    flags.flagged[0][1].set_result(None)  # the server answered the STORE
    pipeline.add(*batch(7))
    assert ckpt.done_uids == [2] and server.flags == []


def test_a_failed_run_flags_its_stored_prefix_then_raises(
    parts: tuple[Pipeline, HandStore, HandFlagger, Checkpoints, Server],
) -> None:
    pipeline, store, _flags, ckpt, _server = parts
    pipeline.add(*batch(1, 3))
    store.commit(0, stored=1, error=OSError("disk full"))
    with pytest.raises(OSError, match="disk full"):
        pipeline.drain()
    assert ckpt.done_uids == [1]  # below the message that failed, nothing further


def test_a_refused_store_fails_the_sync_and_the_checkpoint_stays(
    parts: tuple[Pipeline, HandStore, HandFlagger, Checkpoints, Server],
) -> None:
    pipeline, store, flags, ckpt, server = parts
    pipeline.add(*batch(1))
    store.commit(0)
    pipeline.add(*batch(3))
    flags.flagged[0][1].set_exception(IMAPClientError("STORE failed: NO"))
    with pytest.raises(IMAPClientError, match="STORE failed"):
        pipeline.add(*batch(5))
    assert ckpt.done_uids == [] and server.flags == []


def test_when_the_store_dies_that_is_the_error_even_if_flags_then_fail(
    parts: tuple[Pipeline, HandStore, HandFlagger, Checkpoints, Server],
) -> None:
    pipeline, store, flags, _ckpt, _server = parts
    pipeline.add(*batch(1))
    store.runs[0][1].set_exception(RuntimeError("the store process ended"))

    def refused() -> None:
        raise IMAPClientError("STORE failed: NO")

    flags.flush = refused  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="store process ended"):
        pipeline.drain()


def test_runs_grow_while_the_store_is_busy(
    parts: tuple[Pipeline, HandStore, HandFlagger, Checkpoints, Server],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(imap_pipeline, "STORE_CHUNK", 6)
    pipeline, store, _flags, _ckpt, _server = parts
    for first in range(1, 12, 2):
        pipeline.add(*batch(first))
    assert [len(items) for items, _f in store.runs] == [2, 6]  # then 4 held back
