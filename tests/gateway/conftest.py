"""Fixtures: a private Dovecot per test (see tests/support/dovecot.py).

Dovecot takes about a second to exit after SIGTERM, so a test's servers are signalled
at its teardown and reaped (and their directories removed) once at the end of the
session, rather than making every test wait.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.dovecot import Dovecot, start_dovecot

_stopping: list[Dovecot] = []


@pytest.fixture(scope="session", autouse=True)
def _reap_dovecots() -> Iterator[None]:
    yield
    for server in _stopping:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture
def dovecot_factory() -> Iterator[Callable[..., Dovecot]]:
    started: list[Dovecot] = []

    def factory(users: dict[str, str] | None = None, **options: Any) -> Dovecot:
        server = start_dovecot(users or {"alice": "secret-a"}, **options)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.signal_stop()
        _stopping.append(server)


@pytest.fixture
def dovecot(dovecot_factory: Callable[..., Dovecot]) -> Dovecot:
    return dovecot_factory({"alice": "secret-a", "bob": "secret-b"})
