"""Inserting scan rows, and the hooks that run in the same transaction.

Every path that stores scan events (the group-commit writer, the spool replay, tests' session
writer) inserts through ``insert_scans`` or ``postgresql_batch``, so the hooks see every row
exactly once, committed or rolled back together with it: app.analytics keeps its daily totals
and writes scan.created webhook events this way.

On PostgreSQL a batch is one statement: the rows travel as one JSON parameter, the insert is a
data-modifying CTE, and each hook that can adds its work as CTEs of its own. One round trip a
batch, and, sent in autocommit mode, its own transaction: the event loop sends it without a
writer thread (app.tracking.scanlog). The rows as arrays of values cost the driver a Python
call a value, and the hooks' statements round trips of their own; a batch's CPU in the server
process was most of a page view's.
"""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from functools import cache
from operator import itemgetter
from typing import Any

from sqlalchemy import Column, Connection, Integer, Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from app.db import Processor, as_is, bind_processors
from app.tracking.models import ScanEvent

ScanInsertHook = Callable[[Connection, Sequence[dict[str, Any]], Sequence[int]], None]


@dataclass(frozen=True)
class ScanHook:
    """Work done in the transaction that inserts scan rows; what raises fails the rows like a
    failed insert.

    ``run`` gets the rows and their ids. ``postgresql``, where given, does the same work on
    PostgreSQL inside the batch's statement instead: data-modifying CTEs, named after the hook
    to keep clear of the others', that read ``batch`` (the rows as given, numbered ``n`` from 1
    in order) or ``inserted`` (the stored rows, ids and all); ``params`` gives the parameters
    they name, from the batch's rows. PostgreSQL runs every data-modifying CTE, read or not.
    """

    run: ScanInsertHook
    postgresql: str | None = None
    params: Callable[[Sequence[dict[str, Any]]], dict[str, Any]] | None = None


_insert_hooks: list[ScanHook] = []
_table: Table = ScanEvent.__table__  # type: ignore[attr-defined]


def on_scans_inserted(hook: ScanHook | ScanInsertHook) -> None:
    """Run ``hook`` in the transaction of every batch of scan rows."""
    if not isinstance(hook, ScanHook):
        hook = ScanHook(run=hook)
    remove_scan_hook(hook)  # registered again (another app in the process): replaced
    _insert_hooks.append(hook)


def remove_scan_hook(hook: ScanHook | ScanInsertHook) -> None:
    run = hook.run if isinstance(hook, ScanHook) else hook
    _insert_hooks[:] = [known for known in _insert_hooks if known.run != run]


def insert_scans(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        statement, params = postgresql_batch(rows)
        ids = list(connection.exec_driver_sql(statement, params).scalars())
        hooks = [hook for hook in _insert_hooks if hook.postgresql is None]
    else:
        ids = _insert_sqlite(connection, rows)
        hooks = _insert_hooks
    for hook in hooks:
        hook.run(connection, rows, ids)


def hooks_all_in_sql() -> bool:
    """Whether ``postgresql_batch`` does all that a batch needs (no hook runs in Python), so
    that it can be sent on its own, in autocommit mode."""
    return all(hook.postgresql is not None for hook in _insert_hooks)


def postgresql_batch(rows: Sequence[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """PostgreSQL's statement for a batch and its parameters; it returns the new ids in the
    rows' order. Hooks without SQL are left to the caller (see ``insert_scans``)."""
    hooks = tuple(hook for hook in _insert_hooks if hook.postgresql is not None)
    params: dict[str, Any] = {
        "rows": json.dumps([_complete(row) for row in rows], default=_json_value)
    }
    for hook in hooks:
        if hook.params is not None:
            params.update(hook.params(rows))
    return _postgresql_statement(tuple(hook.postgresql for hook in hooks)), params


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"a scan row holds a {type(value).__name__}: {value!r}")


# The ids come back in any order from RETURNING; sorted, they are the rows' ids in order,
# because the sequence numbers the rows in the order the ORDER BY feeds them.
@cache
def _postgresql_statement(hook_ctes: tuple[str, ...]) -> str:
    columns = ", ".join(_NAMES)
    typed = ", ".join(f"{name} {_PG_TYPES[name]}" for name in _NAMES)
    ctes = [
        f"batch AS (SELECT * FROM ROWS FROM (json_to_recordset(CAST(%(rows)s AS JSON))"
        f" AS ({typed})) WITH ORDINALITY AS batch({columns}, n))",
        f"inserted AS (INSERT INTO scan_event ({columns}) SELECT {columns} FROM batch"
        " ORDER BY n RETURNING *)",
        *hook_ctes,
    ]
    return f"WITH {', '.join(ctes)} SELECT id FROM inserted ORDER BY id"


# SQLite numbers an INTEGER PRIMARY KEY as max(rowid) + 1, and the writer holds the database's
# one write lock for the whole transaction, so the rows of one INSERT get consecutive ids
# ending at its last rowid. One multi-row INSERT, not executemany: the driver lets go of the
# interpreter lock for every statement step, and getting it back from the busy event loop is
# what a batch mostly waits for. (RETURNING would add a step a row.)
def _insert_sqlite(connection: Connection, rows: Sequence[dict[str, Any]]) -> list[int]:
    ids: list[int] = []
    converting = _converting(bind_processors(connection.dialect, _COLUMNS))
    for start in range(0, len(rows), _SQLITE_ROWS_PER_INSERT):
        chunk = rows[start : start + _SQLITE_ROWS_PER_INSERT]
        params: list[Any] = []
        for row in chunk:
            values = list(_values_of(_complete(row)))
            for index, process in converting:
                values[index] = process(values[index])
            params += values
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
_PG_TYPES = {
    column.name: "BIGINT"
    if isinstance(column.type, Integer)
    else column.type.compile(dialect=postgresql.dialect())  # type: ignore[no-untyped-call]
    for column in _COLUMNS
}


def _complete(row: dict[str, Any]) -> dict[str, Any]:
    """The row with every column the model defaults (callers leave out what they lack)."""
    return {**_DEFAULTS, **row}


# A row's values in column order, in one call into C. Only the columns whose type has a bind
# processor (the timestamp, the flag) go through it: the driver takes the rest as they are (our
# enums are str enums). A call a value cost a batch of 30 rows some 100 microseconds.
_values_of = itemgetter(*_NAMES)


@cache
def _converting(processors: tuple[Processor, ...]) -> tuple[tuple[int, Processor], ...]:
    return tuple(
        (index, process) for index, process in enumerate(processors) if process is not as_is
    )


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
