"""Many-row INSERTs on the accept path without SQLAlchemy's per-row parameter work.

`Connection.execute(insert, [dict, ...])` rebuilds every row's parameters through the
compiler and each column type's processor, which cost more than SQLite's own insert:
during an IMAP backfill the store step spent most of its time there. A `Bulk` compiles
its statement once per dialect, looks the column types' bind processors up once, and
hands the driver ready tuples (or dicts, for drivers with named parameters) through
`exec_driver_sql`. The values are converted by the same processors SQLAlchemy would
run, so what lands in the table is identical; the dialect's own paramstyle is used, so
the same code serves SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.dml import Insert

Processor = Callable[[Any], Any] | None


class Bulk:
    """One INSERT statement, compiled for one dialect, fed plain rows."""

    def __init__(self, stmt: Insert, dialect: Dialect, columns: Sequence[str]) -> None:
        table: Any = stmt.table
        compiled: Any = stmt.compile(dialect=dialect, column_keys=list(columns))
        self.sql: str = compiled.string
        self.columns = tuple(columns)
        self._procs: dict[str, Processor] = {
            c: table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns
        }
        names = list(compiled.positiontup) if compiled.positional else list(compiled.binds)
        if sorted(names) != sorted(columns):
            raise ValueError(f"statement binds {sorted(names)}, not the columns {sorted(columns)}")
        self._order: tuple[str, ...] | None = tuple(names) if compiled.positional else None

    def params(self, row: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        """One row's driver parameters, converted exactly as SQLAlchemy would."""
        procs = self._procs
        if self._order is not None:
            return tuple(
                row[c] if procs[c] is None else procs[c](row[c])  # type: ignore[misc]
                for c in self._order
            )
        return {
            c: row[c] if procs[c] is None else procs[c](row[c])  # type: ignore[misc]
            for c in self.columns
        }

    def params_many(
        self, rows: Sequence[Mapping[str, Any]], shared: Mapping[str, Any] | None = None
    ) -> list[Any]:
        """Driver parameters of `rows` with `shared`: the values every row has (a batch's
        timestamp, the columns a new row leaves empty), converted once for all of them
        instead of once per row. A row needs only the columns `shared` lacks; the
        columns `shared` has are taken from it."""
        shared = shared or {}
        procs = self._procs
        fixed = {c: v if procs[c] is None else procs[c](v) for c, v in shared.items()}  # type: ignore[misc]
        if self._order is None:
            return [{**fixed, **self._own(row, fixed)} for row in rows]
        order = self._order
        template = [fixed.get(c) for c in order]
        own = [(i, c, procs[c]) for i, c in enumerate(order) if c not in fixed]
        out = []
        for row in rows:
            values = template.copy()
            for i, c, proc in own:
                values[i] = row[c] if proc is None else proc(row[c])
            out.append(tuple(values))
        return out

    def _own(self, row: Mapping[str, Any], fixed: Mapping[str, Any]) -> dict[str, Any]:
        procs = self._procs
        return {
            c: row[c] if procs[c] is None else procs[c](row[c])  # type: ignore[misc]
            for c in self.columns
            if c not in fixed
        }

    def replaced(self, params: Any, column: str, value: Any) -> Any:
        """`params` (from `params`) with `column` set to `value`, which needs no
        conversion (an id known only inside the transaction, say)."""
        if self._order is None:
            return {**params, column: value}
        i = self._order.index(column)
        return (*params[:i], value, *params[i + 1 :])

    def run(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert every row in one executemany."""
        if rows:
            conn.exec_driver_sql(self.sql, [self.params(r) for r in rows])  # type: ignore[arg-type]

    def run_one(self, conn: Connection, row: Mapping[str, Any]) -> Any:
        """Insert one row; the cursor result (for a RETURNING statement)."""
        return conn.exec_driver_sql(self.sql, self.params(row))  # type: ignore[arg-type]
