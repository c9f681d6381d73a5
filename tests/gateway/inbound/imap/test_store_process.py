"""Backfill through a forked store process: still commit → flag → checkpoint, and nothing
lost or stored twice when either process dies at any point."""

from __future__ import annotations

import fcntl
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

import gateway.inbound.imap.child as imap_child
from gateway.config import Config
from gateway.inbound.imap.poller import ImapError, backfill
from storage.db import make_engine
from storage.models import ImapCheckpoint, Message
from tests.support.dovecot import Dovecot, folder_state, mailbox_section, make_message, password_env
from tests.support.postgres import pg_bindir

ROOT = Path(__file__).resolve().parents[4]
KEYWORD = b"$Stored"
SECTION: dict[str, Any] = {"after_store": "keyword", "keyword": "$Stored", "batch_size": 50}


@pytest.fixture
def config(
    dovecot: Dovecot, make_config: Callable[..., Config], monkeypatch: pytest.MonkeyPatch
) -> Config:
    for var, value in password_env(dovecot).items():
        monkeypatch.setenv(var, value)
    return make_config(imap=[mailbox_section(dovecot, **SECTION)])


@pytest.fixture
def forks(engine: Engine) -> None:
    # These tests are about the child; a stray thread would quietly test the thread path.
    assert imap_child.can_fork(engine), "another thread is running: no store process"


def flagged(dovecot: Dovecot) -> list[int]:
    return sorted(uid for uid, flags in folder_state(dovecot).items() if KEYWORD in flags)


def message_ids(engine: Engine) -> Counter[str | None]:
    with Session(engine) as session:
        return Counter(session.exec(select(Message.message_id)).all())


def last_uid(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(ImapCheckpoint)).one().last_uid


def assert_all_once(engine: Engine, dovecot: Dovecot, total: int) -> None:
    counts = message_ids(engine)
    assert len(counts) == total and set(counts.values()) == {1}
    assert flagged(dovecot) == list(range(1, total + 1))
    assert last_uid(engine) == total


@pytest.mark.usefixtures("forks")
def test_backfill_stores_in_a_child_process_that_is_gone_afterwards(
    dovecot: Dovecot, config: Config, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    dovecot.append([make_message(i) for i in range(1200)])
    children: list[imap_child.ChildStore] = []
    real_init = imap_child.ChildStore.__init__

    def spy(self: imap_child.ChildStore, *args: Any) -> None:
        real_init(self, *args)
        children.append(self)

    monkeypatch.setattr(imap_child.ChildStore, "__init__", spy)

    assert backfill(config, engine, "support", since=None, progress=False) == 1200
    assert len(children) == 1 and children[0].process.exitcode == 0
    assert multiprocessing.active_children() == []
    assert_all_once(engine, dovecot, 1200)
    assert backfill(config, engine, "support", since=None, progress=False) == 0


@pytest.mark.usefixtures("forks")
@pytest.mark.parametrize("commits", [False, True], ids=["before-commit", "after-commit"])
def test_store_process_dying_before_it_answers_leaves_its_run_unflagged(
    commits: bool,
    dovecot: Dovecot,
    config: Config,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    total = 1200
    dovecot.append([make_message(i) for i in range(total)])
    parent, real, runs = os.getpid(), imap_child.store_run, 0

    def second_run_dies(*args: Any) -> Any:
        nonlocal runs
        assert os.getpid() != parent, "storing in the test process, not in a child"
        runs += 1
        if runs == 2:
            if commits:
                real(*args)
            os._exit(9)  # like a SIGKILL or the OOM killer: no answer, no clean-up
        return real(*args)

    monkeypatch.setattr(imap_child, "store_run", second_run_dies)
    with pytest.raises(ImapError, match=r"store process ended \(exit code 9\)"):
        backfill(config, engine, "support", since=None, progress=False)

    # Only the first run was confirmed: it alone is flagged and checkpointed.
    first = last_uid(engine)
    assert first >= 1 and flagged(dovecot) == list(range(1, first + 1))
    ids = message_ids(engine)
    stored = {f"msg-{i}@customer.example.org" for i in range(len(ids))}
    assert set(ids) == stored  # a prefix: the first run, and the second if it committed
    assert len(ids) > first if commits else len(ids) == first
    assert multiprocessing.active_children() == []

    monkeypatch.setattr(imap_child, "store_run", real)
    assert backfill(config, engine, "support", since=None, progress=False) == total - len(ids)
    assert_all_once(engine, dovecot, 1200)


def write_config(tmp_path: Path, db_path: Path, dovecot: Dovecot) -> Path:
    lines = ["[storage]", f"url = {json.dumps(f'sqlite:///{db_path}')}", "[[imap]]"]
    for key, value in mailbox_section(dovecot, **SECTION).items():
        lines.append(f"{key} = {json.dumps(value)}")
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_sigkill_of_the_backfill_leaves_no_store_process_and_loses_nothing(
    dovecot: Dovecot, config: Config, engine: Engine, db_path: Path, tmp_path: Path
) -> None:
    total = 3000
    dovecot.append([make_message(i, size=2000) for i in range(total)])
    config_file = write_config(tmp_path, db_path, dovecot)
    log = tmp_path / "backfill.log"
    command = [sys.executable, "-m", "gateway.cli", "--config", str(config_file)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*command, "ingest", "--imap", "support"],
            cwd=ROOT,
            env={**os.environ, **password_env(dovecot)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: bool(children_of(proc.pid)), 30, "the store process")
        children = children_of(proc.pid)
        wait_until(lambda: len(message_ids(engine)) >= 500, 30, "the first committed run")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert len(message_ids(engine)) < total, "the backfill finished before it was killed"
    # The orphan finishes the run in hand, sees the pipe closed and exits.
    wait_until(lambda: not any(running(pid) for pid in children), 30, "the orphan to exit")

    backfill(config, engine, "support", since=None, progress=False)
    assert_all_once(engine, dovecot, total)


@pytest.mark.postgres
@pytest.mark.skipif(pg_bindir() is None, reason="PostgreSQL binaries are not installed")
def test_a_store_process_writes_to_postgresql_too(
    dovecot: Dovecot, config: Config, pg_engine: Engine
) -> None:
    assert imap_child.can_fork(pg_engine), "another thread is running: no store process"
    dovecot.append([make_message(i) for i in range(1200)])

    assert backfill(config, pg_engine, "support", since=None, progress=False) == 1200
    assert_all_once(pg_engine, dovecot, 1200)
    # The parent's own pooled connections were left alone by the child.
    assert backfill(config, pg_engine, "support", since=None, progress=False) == 0


def test_a_store_process_is_forked_only_while_this_process_has_one_thread(
    engine: Engine,
) -> None:
    assert imap_child.can_fork(engine)
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert not imap_child.can_fork(engine)
    finally:
        release.set()
        other.join()
    memory = make_engine("sqlite:///:memory:")
    try:
        assert not imap_child.can_fork(memory)  # lives in one connection: cannot be shared
    finally:
        memory.dispose()


class Unpicklable(Exception):
    def __reduce__(self) -> Any:
        raise TypeError("no")


def test_an_error_that_cannot_cross_the_pipe_is_sent_as_its_description() -> None:
    assert imap_child._portable(None) is None
    same = OSError("disk full")
    assert imap_child._portable(same) is same
    sent = imap_child._portable(Unpicklable("locked"))
    assert isinstance(sent, RuntimeError) and str(sent) == "Unpicklable: locked"


def test_the_pipe_to_a_store_process_holds_a_whole_megabyte() -> None:
    reader, writer = multiprocessing.get_context("fork").Pipe(duplex=False)
    try:
        before = fcntl.fcntl(writer.fileno(), fcntl.F_GETPIPE_SZ)
        imap_child._widen(writer)
        assert before < imap_child.PIPE_BYTES == fcntl.fcntl(writer.fileno(), fcntl.F_GETPIPE_SZ)
    finally:
        reader.close()
        writer.close()


@pytest.mark.usefixtures("forks")
def test_runs_are_answered_in_order_when_one_is_refused_whole(
    engine: Engine, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store process builds a run while the one before commits; a run that never
    reaches a commit must not hold up the next."""
    real = imap_child.store_run

    def refuse_uid_999(eng: Engine, cfg: Any, items: Any, prepared: Any) -> Any:
        if items[0][0] == 999:
            return [], RuntimeError("refused whole")
        return real(eng, cfg, items, prepared)

    monkeypatch.setattr(imap_child, "store_run", refuse_uid_999)  # before the fork
    runs = [[(1, make_message(1)), (2, make_message(2))], [(999, make_message(3))]]
    runs += [[(4, make_message(4)), (5, make_message(2))]]  # 5 repeats 2
    store = imap_child.ChildStore(engine, config.imap[0])
    try:
        futures = [store.submit(run) for run in runs]
        answers = [future.result(timeout=60) for future in futures]
    finally:
        store.close()
    assert [len(results) for results, _error in answers] == [2, 0, 2]
    assert str(answers[1][1]) == "refused whole"
    assert [r.duplicate for r in answers[2][0]] == [False, True]
    assert answers[2][0][1].message_pk == answers[0][0][1].message_pk
    assert sum(message_ids(engine).values()) == 3
