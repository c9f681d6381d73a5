"""Bring an existing database up to the tables this version declares.

A team that ran an earlier version has a queue they cannot throw away. `create_all`
adds missing tables but never touches existing ones, so new columns are added here:
only nullable columns (or ones with a server default) are ever added, which every
backend can do in place without rewriting the table, and each addition is followed by
the backfill that gives old rows a sensible value. Missing indexes are created too,
those that belong to one kind of database (storage/scale_indexes.py) only there, and
indexes that a newer one replaced (`scale_indexes.RETIRED`) are dropped.
Running it on an up-to-date database changes nothing.
"""

from __future__ import annotations

import logging

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.schema import Column, Table
from sqlmodel import SQLModel

from storage import mail_time, scale_indexes

log = logging.getLogger(__name__)

# Run once, right after the column was added: old rows get the value new rows get.
# Tables are upgraded parents first, so a copy of a parent's new column is filled in.
BACKFILLS: dict[tuple[str, str], str] = {
    ("message", "written_at"): "UPDATE message SET written_at = received_at "
    "WHERE written_at IS NULL",
    ("draft", "mail_written_at"): mail_time.BACKFILL,
    # analysis.incident_keys stays NULL: storage.incidents.facts computes them when read.
}


def upgrade(engine: Engine) -> list[str]:
    """Add the missing columns and indexes; the changes made, for the log."""
    done: list[str] = []
    with engine.begin() as conn:
        inspector = inspect(conn)
        existing_tables = set(inspector.get_table_names())
        for table in SQLModel.metadata.sorted_tables:
            if table.name not in existing_tables:
                continue  # create_all makes it whole
            before = len(done)
            have = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in have:
                    _add_column(conn, table, column)
                    done.append(f"{table.name}.{column.name}")
            indexes = {str(i["name"]) for i in inspector.get_indexes(table.name)}
            for name in sorted(indexes & set(scale_indexes.RETIRED)):
                conn.execute(text(f'DROP INDEX "{name}"'))
                done.append(f"dropped index {name}")
            for index in list(table.indexes):
                if index.name not in indexes:
                    # A no-op for an index that is another database's (`Index.ddl_if`).
                    index.create(conn)
                    if conn.dialect.has_index(conn, table.name, str(index.name)):
                        done.append(f"index {index.name}")
            if len(done) > before and conn.dialect.name == "postgresql":
                # A backfilled column or a new expression index has no statistics until
                # autovacuum gets round to the table; meanwhile the planner guesses a
                # third of the rows match a time range and reads the whole table.
                conn.execute(text(f'ANALYZE "{table.name}"'))
    for change in done:
        log.info("database upgraded: %s", change)
    return done


def _add_column(conn: Connection, table: Table, column: Column[object]) -> None:
    if not column.nullable and column.server_default is None:
        raise RuntimeError(
            f"cannot add required column {table.name}.{column.name} to an existing database"
        )
    kind = column.type.compile(dialect=conn.dialect)
    name = conn.dialect.identifier_preparer.quote(column.name)
    table_name = conn.dialect.identifier_preparer.quote(table.name)
    conn.execute(text(f"ALTER TABLE {table_name} ADD COLUMN {name} {kind}"))
    backfill = BACKFILLS.get((table.name, column.name))
    if backfill:
        conn.execute(text(backfill))
