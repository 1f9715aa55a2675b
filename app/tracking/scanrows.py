"""Inserting scan rows, and the hooks that run in the same transaction.

Every path that stores scan events (the group-commit writer, the spool replay, tests' session
writer) inserts through ``insert_scans``, so the hooks see every row exactly once, committed or
rolled back together with it: app.analytics keeps its daily totals and writes scan.created
webhook events this way.
"""

from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any

from sqlalchemy import Column, Connection, Integer, Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from app.db import bind_processors
from app.tracking.models import ScanEvent

ScanInsertHook = Callable[[Connection, Sequence[dict[str, Any]], Sequence[int]], None]
_insert_hooks: list[ScanInsertHook] = []
_table: Table = ScanEvent.__table__  # type: ignore[attr-defined]


def on_scans_inserted(hook: ScanInsertHook) -> None:
    """Run ``hook`` in the transaction that inserts scan rows, with their ids. A hook that
    raises fails the rows like a failed insert."""
    if hook not in _insert_hooks:
        _insert_hooks.append(hook)


def insert_scans(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        ids = _insert_postgresql(connection, rows)
    else:
        ids = _insert_sqlite(connection, rows)
    for hook in _insert_hooks:
        hook(connection, rows, ids)


# SQLite numbers an INTEGER PRIMARY KEY as max(rowid) + 1, and the writer holds the database's
# one write lock for the whole transaction, so the rows of one INSERT get consecutive ids
# ending at its last rowid. One multi-row INSERT, not executemany: the driver lets go of the
# interpreter lock for every statement step, and getting it back from the busy event loop is
# what a batch mostly waits for. (RETURNING would add a step a row.)
def _insert_sqlite(connection: Connection, rows: Sequence[dict[str, Any]]) -> list[int]:
    ids: list[int] = []
    processors = bind_processors(connection.dialect, _COLUMNS)
    for start in range(0, len(rows), _SQLITE_ROWS_PER_INSERT):
        chunk = rows[start : start + _SQLITE_ROWS_PER_INSERT]
        params = [
            process(_plain(row[name]))
            for row in map(_complete, chunk)
            for name, process in zip(_NAMES, processors, strict=True)
        ]
        statement = _SQLITE_INSERT + ", ".join([_SQLITE_ROW] * len(chunk))
        last = connection.exec_driver_sql(statement, tuple(params)).lastrowid
        ids += range(last - len(chunk) + 1, last + 1)
    return ids


_COLUMNS = tuple(column for column in _table.c if column.name != "id")
_NAMES = [column.name for column in _COLUMNS]
_SQLITE_INSERT = f"INSERT INTO scan_event ({', '.join(_NAMES)}) VALUES "
_SQLITE_ROW = f"({', '.join('?' for _ in _NAMES)})"
# Any SQLite build takes 999 parameters in one statement (newer ones more).
_SQLITE_ROWS_PER_INSERT = 999 // len(_NAMES)
_ARRAY_TYPES = {
    column.name: "BIGINT"
    if isinstance(column.type, Integer)
    else column.type.compile(dialect=postgresql.dialect())  # type: ignore[no-untyped-call]
    for column in _COLUMNS
}
# The ids come back in any order; sorted, they are the rows' ids in order, because the
# sequence numbers the rows in the order the ORDER BY feeds them.
_POSTGRESQL_INSERT = (
    f"INSERT INTO scan_event ({', '.join(_NAMES)}) "
    f"SELECT {', '.join(_NAMES)} FROM unnest("
    + ", ".join(f"CAST(%({name})s AS {_ARRAY_TYPES[name]}[])" for name in _NAMES)
    + f") WITH ORDINALITY AS t({', '.join(_NAMES)}, n) ORDER BY n RETURNING id"
)


def _insert_postgresql(connection: Connection, rows: Sequence[dict[str, Any]]) -> list[int]:
    """One statement of the same text for any batch (psycopg parses it once): columns as
    arrays."""
    completed = [_complete(row) for row in rows]
    processors = bind_processors(connection.dialect, _COLUMNS)
    arrays = {
        name: [process(_plain(row[name])) for row in completed]
        for name, process in zip(_NAMES, processors, strict=True)
    }
    return sorted(connection.exec_driver_sql(_POSTGRESQL_INSERT, arrays).scalars())


def _complete(row: dict[str, Any]) -> dict[str, Any]:
    """The row with every column the model defaults (callers leave out what they lack)."""
    return {**_DEFAULTS, **row}


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Enum) else value


# What SQLAlchemy would fill in for a key a row leaves out (campaign ids, say): the model's
# scalar defaults, and NULL where the column allows it.
def _default_of(column: Column[Any]) -> Any:
    default = column.default
    return default.arg if isinstance(default, ScalarElementColumnDefault) else None


_DEFAULTS: dict[str, Any] = {
    column.name: _default_of(column)
    for column in _COLUMNS
    if isinstance(column.default, ScalarElementColumnDefault) or column.nullable
}
