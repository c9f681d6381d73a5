"""`make_engine` takes every way of naming an SQLite database."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from storage.db import make_engine


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_in_memory_urls_get_one_lasting_connection(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    with engine.connect() as conn:  # the same database: it lives in that connection
        assert conn.execute(text("SELECT x FROM t")).scalar() == 1
    engine.dispose()


def test_a_file_url_creates_its_folder(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "db.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    engine.dispose()
    assert path.exists()
