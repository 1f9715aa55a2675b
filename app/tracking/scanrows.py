"""Storing scan rows: the scan writer's dialect part, and the plain insert of other paths.

The writer (app.tracking.scanlog) commits a batch of rows in one transaction from the event
loop, the same way on both databases; what differs is here, behind ``Batches.insert``:

- SQLite: one multi-row INSERT on a connection of the writer's own, committed on the loop (a
  batch takes a millisecond or two). When another writer holds the database's one write lock,
  the batch waits for it in a thread, at most ``wait`` seconds.
- PostgreSQL: one statement on an async psycopg connection in autocommit mode, its own
  transaction; the loop serves pages until the database answers. The rows travel as one JSON
  parameter: as arrays of values they cost the driver a Python call a value. The server gives
  up on a lock or a statement after ``wait`` seconds.

Either way a batch that fails commits nothing; ``BadRow`` says the rows were refused (a
foreign key), anything else that the database is away, locked or slow.

Nothing else happens in a batch's transaction: rollups, webhook events and domain events are
derived after commit from the committed rows (app.analytics.scanfeed).
"""

import asyncio
import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from enum import Enum
from functools import cache
from operator import itemgetter
from typing import Any, Protocol

import psycopg
from sqlalchemy import Column, Connection, Engine, Integer, Table, insert
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from app.db import PG_CONNECT_TIMEOUT_SECONDS, Processor, as_is, bind_processors
from app.tracking.models import ScanEvent

_table: Table = ScanEvent.__table__  # type: ignore[attr-defined]
# How the writer's connection shows in pg_stat_activity.
WRITER_APPLICATION_NAME = "offertrack scan writer"
# A view waits for its scan's commit: the writer waits no longer than this for a connection.
CONNECT_DEADLINE_SECONDS = 0.5


class BadRow(Exception):
    """The database refused the rows themselves (an integrity error), not the connection."""


class Batches(Protocol):
    """One writer's connection to the database, kept between batches."""

    async def insert(self, rows: Sequence[dict[str, Any]], wait: float) -> None:
        """Commit ``rows`` in one transaction, waiting at most ``wait`` seconds for locks."""

    def close(self) -> None: ...


def batches_for(engine: Engine) -> Batches:
    if engine.dialect.name == "sqlite":
        return SqliteBatches(engine)
    return PostgresBatches(engine)


def insert_scans(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert in the caller's transaction (the spool's replay, one-off tools, tests)."""
    if rows:
        connection.execute(insert(_table), [complete(row) for row in rows])


class SqliteBatches:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._raw: Any = None
        self._converting = _converting(bind_processors(engine.dialect, _COLUMNS))

    async def insert(self, rows: Sequence[dict[str, Any]], wait: float) -> None:
        raw = self._connected()
        try:
            raw.acquire_write_lock(wait=False)  # our process's writers (app.db._WriterQueue)
            raw.execute("BEGIN IMMEDIATE")  # and other processes': busy_timeout is 0
        except (sqlite3.OperationalError, OperationalError):  # app.db.WriterBusy is the latter
            raw.release_write_lock()
            # Held: wait for it in a thread, so that the loop serves pages meanwhile.
            await asyncio.to_thread(self._insert_waiting, rows, wait)
            return
        self._insert_begun(raw, rows)

    def _insert_waiting(self, rows: Sequence[dict[str, Any]], wait: float) -> None:
        raw = self._raw
        raw.acquire_write_lock(timeout=wait)
        try:
            raw.execute(f"PRAGMA busy_timeout={int(wait * 1000)}")
            raw.execute("BEGIN IMMEDIATE")
        except BaseException:
            raw.release_write_lock()
            raise
        finally:
            raw.execute("PRAGMA busy_timeout=0")
        self._insert_begun(raw, rows)

    def _insert_begun(self, raw: Any, rows: Sequence[dict[str, Any]]) -> None:
        try:
            for start in range(0, len(rows), _SQLITE_ROWS_PER_INSERT):
                chunk = rows[start : start + _SQLITE_ROWS_PER_INSERT]
                params: list[Any] = []
                for row in chunk:
                    values = list(_values_of(complete(row)))
                    for index, process in self._converting:
                        values[index] = process(values[index])
                    params += values
                raw.execute(_SQLITE_INSERT + ", ".join([_SQLITE_ROW] * len(chunk)), params)
            raw.commit()
        except sqlite3.IntegrityError as exc:
            raw.rollback()
            raise BadRow(str(exc)) from exc
        except BaseException:
            raw.rollback()
            raise

    def _connected(self) -> Any:
        if self._raw is None:
            connection = self._engine.connect()
            connection.detach()  # its settings below must not reach the pool
            raw: Any = connection.connection.dbapi_connection
            raw.execute("PRAGMA busy_timeout=0")  # a lock held elsewhere: wait in a thread
            # The log is copied into the database file by the writer's housekeeping thread,
            # not in a commit on the loop (it syncs the disk).
            raw.execute("PRAGMA wal_autocheckpoint=0")
            self._raw = raw
        return self._raw

    def close(self) -> None:
        raw, self._raw = self._raw, None
        if raw is not None:
            raw.close()


class PostgresBatches:
    def __init__(self, engine: Engine) -> None:
        args, options = engine.dialect.create_connect_args(engine.url)
        options.pop("context", None)  # SQLAlchemy's adapters; this connection needs none
        options.setdefault("application_name", WRITER_APPLICATION_NAME)
        self._connect = (args, {**options, "connect_timeout": PG_CONNECT_TIMEOUT_SECONDS})
        self._connection: psycopg.AsyncConnection[Any] | None = None
        self._wait = -1.0

    async def insert(self, rows: Sequence[dict[str, Any]], wait: float) -> None:
        params = {"rows": json.dumps([complete(row) for row in rows], default=_json_value)}
        kept = self._connection is not None
        try:
            await self._insert(params, wait)
        except psycopg.OperationalError:
            if not kept or self._connection is not None:
                raise
            # The connection kept from the last batch was gone (a restart, a killed backend):
            # the statement never reached a server, so a new connection may send it.
            await self._insert(params, wait)

    async def _insert(self, params: dict[str, Any], wait: float) -> None:
        connection = self._connection or await self._connected()
        try:
            if wait != self._wait:  # a locked table or a stalled server: give up in time
                millis = int(wait * 1000)
                await connection.execute(
                    f"SET lock_timeout = {millis}; SET statement_timeout = {millis}"
                )
                self._wait = wait
            # A server gone silent never answers: past this the outcome is unknown, and the
            # connection is dropped (the server rolls back what it has not committed).
            await asyncio.wait_for(connection.execute(_PG_INSERT, params), wait + 1.0)
        except psycopg.errors.IntegrityError as exc:
            raise BadRow(str(exc)) from exc
        except BaseException as exc:
            if isinstance(exc, TimeoutError | asyncio.CancelledError) or connection.broken:
                self.close()  # mid-statement, or dead: of no use to the next batch
            raise

    async def _connected(self) -> "psycopg.AsyncConnection[Any]":
        args, options = self._connect
        connecting = psycopg.AsyncConnection.connect(*args, autocommit=True, **options)
        # Past the deadline the batch is spooled; the attempt is abandoned (it only connects,
        # so no row can reach the database that way as well as the spool).
        self._connection = await asyncio.wait_for(connecting, CONNECT_DEADLINE_SECONDS)
        self._wait = -1.0
        return self._connection

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            # What the async close() does, without a coroutine: close() may be called from
            # another thread, or once the loop is gone.
            connection.pgconn.finish()


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


_COLUMNS = tuple(column for column in _table.c if column.name != "id")
_NAMES = [column.name for column in _COLUMNS]
_PG_TYPES = {
    column.name: "BIGINT"
    if isinstance(column.type, Integer)
    else column.type.compile(dialect=postgresql.dialect())  # type: ignore[no-untyped-call]
    for column in _COLUMNS
}
_PG_INSERT = (
    f"INSERT INTO scan_event ({', '.join(_NAMES)}) SELECT {', '.join(_NAMES)}"
    " FROM json_to_recordset(CAST(%(rows)s AS JSON))"
    f" AS batch({', '.join(f'{name} {_PG_TYPES[name]}' for name in _NAMES)})"
)
# One multi-row INSERT, not executemany: the driver lets go of the interpreter lock for every
# statement step, and getting it back from the busy event loop is what a batch mostly waited for.
_SQLITE_INSERT = f"INSERT INTO scan_event ({', '.join(_NAMES)}) VALUES "
_SQLITE_ROW = f"({', '.join('?' for _ in _NAMES)})"
# Any SQLite build takes 999 parameters in one statement (newer ones more).
_SQLITE_ROWS_PER_INSERT = 999 // len(_NAMES)
# A row's values in column order, in one call into C. Only the columns whose type has a bind
# processor (the timestamp, the flag) go through it: the driver takes the rest as they are (our
# enums are str enums).
_values_of = itemgetter(*_NAMES)


@cache
def _converting(processors: tuple[Processor, ...]) -> tuple[tuple[int, Processor], ...]:
    return tuple(
        (index, process) for index, process in enumerate(processors) if process is not as_is
    )


def complete(row: dict[str, Any]) -> dict[str, Any]:
    """The row with every column the model defaults (callers leave out what they lack)."""
    return {**_DEFAULTS, **row}


def _default_of(column: Column[Any]) -> Any:
    default = column.default
    return default.arg if isinstance(default, ScalarElementColumnDefault) else None


# What SQLAlchemy would fill in for a key a row leaves out (campaign ids, say): the model's
# scalar defaults, and NULL where the column allows it.
_DEFAULTS: dict[str, Any] = {
    column.name: _default_of(column)
    for column in _COLUMNS
    if isinstance(column.default, ScalarElementColumnDefault) or column.nullable
}
