"""Inserting scan rows, and the hooks that run in the same transaction.

Every path that stores scan events (the group-commit writer, the spool replay, tests' session
writer) inserts through ``insert_scans``, so the hooks see every row exactly once, committed or
rolled back together with it: app.analytics keeps its daily totals and writes scan.created
webhook events this way.
"""

from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any

from sqlalchemy import Column, Connection, Integer, Table, insert, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.schema import ScalarElementColumnDefault

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


# The ids come back in any order; sorted, they are the rows' ids in order, because both
# databases number the rows of one INSERT in the order it inserts them (rowid max + 1 on SQLite,
# the sequence on PostgreSQL, fed by the ORDER BY). SQLAlchemy's sort_by_parameter_order would
# insert row by row on SQLite, and the multi-row VALUES text it sends PostgreSQL differs with
# every batch size, so psycopg parses it anew each time: together most of a scan's cost.
def _insert_sqlite(connection: Connection, rows: Sequence[dict[str, Any]]) -> list[int]:
    statement = insert(_table).returning(_table.c.id)
    return sorted(connection.execute(statement, [_complete(row) for row in rows]).scalars())


_COLUMNS = [column for column in _table.c if column.name != "id"]
_ARRAY_TYPES = {
    column.name: "BIGINT"
    if isinstance(column.type, Integer)
    else column.type.compile(dialect=postgresql.dialect())  # type: ignore[no-untyped-call]
    for column in _COLUMNS
}
_POSTGRESQL_INSERT = text(
    f"INSERT INTO scan_event ({', '.join(c.name for c in _COLUMNS)}) "
    f"SELECT {', '.join(c.name for c in _COLUMNS)} FROM unnest("
    + ", ".join(f"CAST(:{c.name} AS {_ARRAY_TYPES[c.name]}[])" for c in _COLUMNS)
    + f") WITH ORDINALITY AS t({', '.join(c.name for c in _COLUMNS)}, n) ORDER BY n RETURNING id"
)


def _insert_postgresql(connection: Connection, rows: Sequence[dict[str, Any]]) -> list[int]:
    """One statement of the same text for any batch: its columns as arrays."""
    completed = [_complete(row) for row in rows]
    arrays = {c.name: [_plain(row[c.name]) for row in completed] for c in _COLUMNS}
    return sorted(connection.execute(_POSTGRESQL_INSERT, arrays).scalars())


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
