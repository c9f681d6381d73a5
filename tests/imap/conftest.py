"""Fixtures: a private Dovecot per test (see tests/imap/dovecot.py), torn down after it."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator

import pytest

from tests.imap.dovecot import Dovecot, start_dovecot


@pytest.fixture
def dovecot_factory() -> Iterator[Callable[..., Dovecot]]:
    started: list[Dovecot] = []

    def factory(users: dict[str, str] | None = None) -> Dovecot:
        server = start_dovecot(users or {"alice": "secret-a"})
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture
def dovecot(dovecot_factory: Callable[..., Dovecot]) -> Dovecot:
    return dovecot_factory({"alice": "secret-a", "bob": "secret-b"})
