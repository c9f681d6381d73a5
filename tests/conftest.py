"""Shared fixtures: a temp-file SQLite engine, config factories, a real SMTP front door.

Fixtures are factories (build a real thing from declared parameters, tear it down):
tests get real aiosmtpd servers on 127.0.0.1 and real SQLite files, never mocks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from gateway.config import Config, parse_config
from storage.db import init_db, make_engine
from tests.support.dovecot import DovecotMissing
from tests.support.net import free_port
from tests.support.prometheus import Prometheus, PrometheusMissing, start_prometheus


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A test that needs Dovecot where none is installed is reported as skipped."""
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is not None and call.excinfo.errisinstance(DovecotMissing):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, str(call.excinfo.value))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "queue.sqlite3"


@pytest.fixture
def engine(db_path: Path) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{db_path}")
    init_db(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def make_config(tmp_path: Path, db_path: Path) -> Callable[..., Config]:
    """Build a Config from section dicts; storage points at the test database."""

    def factory(**sections: Any) -> Config:
        data: dict[str, Any] = {"storage": {"url": f"sqlite:///{db_path}"}}
        data.update(sections)
        return parse_config(data, base_dir=tmp_path)

    return factory


@pytest.fixture
def smtp_server(
    engine: Engine, make_config: Callable[..., Config]
) -> Iterator[Callable[..., tuple[Any, int]]]:
    """Start a real supportgate SMTP front door on 127.0.0.1; stopped at teardown."""
    from gateway.inbound.smtp import make_controller

    started: list[Any] = []

    def factory(ingest_fn: Any = None, **smtp: Any) -> tuple[Any, int]:
        port = free_port()
        smtp.setdefault("recipients", ["support@example.com", "@help.example.org"])
        config = make_config(smtp={"host": "127.0.0.1", "port": port, **smtp})
        kwargs = {"ingest_fn": ingest_fn} if ingest_fn else {}
        controller = make_controller(config, engine, **kwargs)
        controller.start()
        started.append(controller)
        return controller, port

    yield factory
    for controller in started:
        controller.stop()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """One throwaway PostgreSQL cluster for the whole run (started on first use)."""
    from tests.support.postgres import postgres_cluster

    with postgres_cluster() as url:
        yield url


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """An engine on fresh, empty tables."""
    from sqlmodel import SQLModel

    eng = make_engine(pg_url)
    SQLModel.metadata.drop_all(eng)
    init_db(eng)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session", autouse=True)
def _import_spacy_before_any_frozen_clock() -> None:
    """spaCy's config layer (pydantic v1) fails to import under freezegun, and the intent
    model imports spaCy lazily: import it once up front, whichever test runs first."""
    import spacy  # noqa: F401


@pytest.fixture
def prometheus_factory() -> Iterator[Callable[..., Prometheus]]:
    started: list[Prometheus] = []

    def factory(**options: Any) -> Prometheus:
        try:
            server = start_prometheus(**options)
        except PrometheusMissing as exc:
            pytest.skip(str(exc))
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def sqlite_and_pg(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """Each test twice: on a fresh SQLite file, and on fresh PostgreSQL tables (skipped
    where PostgreSQL is not installed)."""
    from tests.support.postgres import pg_bindir

    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'q.sqlite3'}")
        init_db(eng)
        yield eng
        eng.dispose()
        return
    if pg_bindir() is None:
        pytest.skip("PostgreSQL binaries are not installed")
    yield request.getfixturevalue("pg_engine")
