"""PostgreSQL gets the large-queue indexes, new or upgraded, and SQLite never does.

`storage.schema.upgrade` brings an existing database up to the declared indexes; these
are declared for PostgreSQL only, and the trigram ones need pg_trgm, which a role
without the CREATE privilege on its database cannot install: then they are left out
and everything else still works.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

from storage.db import init_db, make_engine
from storage.review import OPEN_STATES, QueueFilter, count_queue
from storage.scale_indexes import QUEUE_OPEN_STATES, RETIRED
from storage.schema import upgrade
from storage.seed import seed
from tests.support.postgres import pg_bindir

TRIGRAM = {
    "ix_draft_subject_trgm", "ix_draft_to_addr_trgm", "ix_message_subject_trgm",
    "ix_message_from_addr_trgm", "ix_ticket_signature_trgm",
}  # fmt: skip
OTHERS = {
    "ix_message_mail_time", "ix_analysis_message_intent", "ix_draft_queue", "ix_message_queue",
    "ix_draft_open_by_age", "ix_draft_open_by_confidence", "ix_draft_open_by_sender",
    "ix_draft_open_by_intent", "ix_draft_open_by_ticket", "ix_ticket_open_due", "ix_ticket_open",
}  # fmt: skip
needs_pg = pytest.mark.skipif(pg_bindir() is None, reason="PostgreSQL binaries are not installed")


def index_names(engine: Engine) -> set[str]:
    inspector = inspect(engine)
    return {
        str(i["name"])
        for table in ("message", "draft", "ticket", "analysis")
        for i in inspector.get_indexes(table)
    }


def test_the_open_drafts_indexes_cover_the_queues_open_states() -> None:
    # A page filters on OPEN_STATES; PostgreSQL uses a partial index only for a filter
    # that implies the index's own condition.
    assert set(QUEUE_OPEN_STATES) == set(OPEN_STATES)


def test_sqlite_gets_none_of_them_and_upgrades_quietly(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'q.sqlite3'}")
    init_db(engine)
    assert not index_names(engine) & (TRIGRAM | OTHERS)
    assert upgrade(engine) == []
    engine.dispose()


@pytest.mark.postgres
@needs_pg
def test_postgres_database_gets_them_new_and_on_upgrade(pg_engine: Engine) -> None:
    assert index_names(pg_engine) >= TRIGRAM | OTHERS
    with pg_engine.begin() as conn:
        for name in TRIGRAM | OTHERS:
            conn.execute(text(f'DROP INDEX "{name}"'))
    done = upgrade(pg_engine)
    assert set(done) == {f"index {name}" for name in TRIGRAM | OTHERS}
    assert index_names(pg_engine) >= TRIGRAM | OTHERS
    assert upgrade(pg_engine) == []


@pytest.mark.postgres
@needs_pg
def test_an_index_a_newer_one_replaced_is_dropped(pg_engine: Engine) -> None:
    with pg_engine.begin() as conn:  # as an earlier version made it
        conn.execute(text("DROP INDEX ix_message_mail_time"))
        conn.execute(text("CREATE INDEX ix_message_written_or_received ON message "
                          "(coalesce(written_at, received_at))"))  # fmt: skip
    assert upgrade(pg_engine) == [
        "dropped index ix_message_written_or_received",
        "index ix_message_mail_time",
    ]
    assert not index_names(pg_engine) & set(RETIRED)
    assert upgrade(pg_engine) == []


@pytest.mark.postgres
@needs_pg
def test_without_pg_trgm_the_rest_is_built_and_search_works(
    pg_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    with pg_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("DROP DATABASE IF EXISTS limited"))
        conn.execute(text("DROP ROLE IF EXISTS limited_app"))
        conn.execute(text("CREATE ROLE limited_app LOGIN"))
        conn.execute(text("CREATE DATABASE limited"))  # owned by postgres, not the app
    admin = make_engine(make_url(str(pg_engine.url)).set(database="limited")
                        .render_as_string(hide_password=False))  # fmt: skip
    with admin.begin() as conn:  # the app may create tables, not extensions
        conn.execute(text("GRANT CREATE ON SCHEMA public TO limited_app"))
    admin.dispose()
    url = make_url(str(pg_engine.url)).set(database="limited", username="limited_app")
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        init_db(engine)
        assert "pg_trgm is not available" in caplog.text
        names = index_names(engine)
        assert names >= OTHERS
        assert not names & TRIGRAM
        seed(engine, count=20)
        with Session(engine) as session:
            assert count_queue(session=session, flt=QueueFilter(search="nordlicht")) > 0
    finally:
        engine.dispose()
