"""Storing scan rows: the scan writer's dialect part, and the insert every other path shares.

A failed batch commits nothing; ``BadRow`` says the database refused the rows themselves,
anything else that it is away, locked or slow.
"""

import asyncio
import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from enum import Enum
from functools import cache
from operator import itemgetter
from typing import Any, Protocol, cast

import psycopg
from sqlalchemy import Column, Connection, Engine, Integer, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from app.db import PG_TIMEOUTS, UTCDateTime
from app.tracking.models import ScanEvent

# How the writer's connection shows in pg_stat_activity.
WRITER_APPLICATION_NAME = "offertrack scan writer"
# A view waits for its scan's commit: the writer waits no longer than this for a connection.
CONNECT_DEADLINE_SECONDS = 0.5


class BadRow(Exception):
    """The database refused the rows themselves (a bug in what was sent), not the connection."""


class Batches(Protocol):
    """One writer's connection to the database, kept between batches."""

    async def insert(self, rows: Sequence[dict[str, Any]]) -> None:
        """Commit ``rows`` in one transaction, waiting at most the writer's ``wait`` for locks."""

    def close(self) -> None: ...


def batches_for(engine: Engine, wait: float) -> Batches:
    if engine.dialect.name == "sqlite":
        return SqliteBatches(engine, wait)
    return PostgresBatches(engine, wait)


def insert_scans(connection: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert in the caller's transaction; returns how many rows were added."""
    try:
        return sum(
            connection.exec_driver_sql(sql, params).rowcount
            for sql, params in statements(connection.dialect.name, rows)
        )
    # OverflowError: SQLite's driver refuses an integer beyond 64 bits before the database
    # sees it (PostgreSQL answers a DataError): the row's fault as well.
    except (IntegrityError, DataError, OverflowError) as exc:
        raise BadRow(str(exc)) from exc


def statements(dialect: str, rows: Sequence[dict[str, Any]]) -> Iterator[tuple[str, Any]]:
    """The INSERTs that store ``rows``, with their parameters."""
    if dialect == "postgresql":
        yield _PG_INSERT, {"rows": json.dumps([complete(row) for row in rows], default=json_value)}
        return
    for start in range(0, len(rows), _SQLITE_ROWS_PER_INSERT):
        chunk = rows[start : start + _SQLITE_ROWS_PER_INSERT]
        params: list[Any] = []
        for row in chunk:
            values = list(_values_of(complete(row)))
            for index in _TIMES:
                values[index] = _sqlite_time(values[index])
            params += values
        yield _sqlite_insert(len(chunk)), tuple(params)


class SqliteBatches:
    """Commits on the event loop (a batch takes a millisecond or two); in a thread only while
    another writer holds the database's one write lock."""

    def __init__(self, engine: Engine, wait: float) -> None:
        self._engine = engine
        self._wait = wait
        self._raw: Any = None

    async def insert(self, rows: Sequence[dict[str, Any]]) -> None:
        raw = self._connected()
        try:
            raw.acquire_write_lock(wait=False)  # our process's writers (app.db._WriterLock)
            raw.execute("BEGIN IMMEDIATE")  # and other processes': busy_timeout is 0
        except (sqlite3.OperationalError, OperationalError):  # app.db.WriterBusy is the latter
            raw.release_write_lock()
            # Held: wait for it in a thread, so that the loop serves pages meanwhile.
            await asyncio.to_thread(self._insert_waiting, rows)
            return
        self._insert_begun(raw, rows)

    def _insert_waiting(self, rows: Sequence[dict[str, Any]]) -> None:
        raw = self._raw
        raw.acquire_write_lock(timeout=self._wait)
        try:
            raw.execute(f"PRAGMA busy_timeout={int(self._wait * 1000)}")
            raw.execute("BEGIN IMMEDIATE")
        except BaseException:
            raw.release_write_lock()
            raise
        finally:
            raw.execute("PRAGMA busy_timeout=0")
        self._insert_begun(raw, rows)

    def _insert_begun(self, raw: Any, rows: Sequence[dict[str, Any]]) -> None:
        try:
            for sql, params in statements("sqlite", rows):
                raw.execute(sql, params)
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
    """An async psycopg connection in autocommit mode: the loop serves pages meanwhile."""

    def __init__(self, engine: Engine, wait: float) -> None:
        args, options = engine.dialect.create_connect_args(engine.url)
        options.pop("context", None)  # SQLAlchemy's adapters; this connection needs none
        options.setdefault("application_name", WRITER_APPLICATION_NAME)
        # A locked table or a stalled server: the server gives up in time, on every statement.
        millis = int(wait * 1000)
        limits = (
            f"{options.get('options', '')} -c lock_timeout={millis} -c statement_timeout={millis}"
        )
        self._connect = (args, {**options, **PG_TIMEOUTS, "options": limits})
        self._wait = wait
        self._connection: psycopg.AsyncConnection[Any] | None = None

    async def insert(self, rows: Sequence[dict[str, Any]]) -> None:
        ((_, params),) = statements("postgresql", rows)
        kept = self._connection is not None
        try:
            await self._insert(params)
        except psycopg.OperationalError:
            if not kept or self._connection is not None:
                raise
            # The connection kept from the last batch was gone (a restart, a killed backend):
            # the statement never reached a server, so a new connection may send it.
            await self._insert(params)

    async def _insert(self, params: dict[str, Any]) -> None:
        connection = self._connection or await self._connected()
        try:
            # A server gone silent never answers: past this the outcome is unknown, and the
            # connection is dropped (the server rolls back what it has not committed).
            await asyncio.wait_for(connection.execute(_PG_INSERT, params), self._wait + 1.0)
        except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
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
        return self._connection

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            # What the async close() does, without a coroutine: close() may be called from
            # another thread, or once the loop is gone.
            connection.pgconn.finish()


def json_value(value: Any) -> Any:
    """A row's value as JSON (``json.dumps``'s default): the spool's lines, PostgreSQL's rows."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"a scan row holds a {type(value).__name__}: {value!r}")


_table: Table = ScanEvent.__table__  # type: ignore[attr-defined]
_COLUMNS = tuple(column for column in _table.c if column.name != "id")
_NAMES = ", ".join(column.name for column in _COLUMNS)
# A time as SQLAlchemy stores it on SQLite (UTC, without the offset; compared as text).
_sqlite_time = cast(Callable[[Any], str], UTCDateTime().bind_processor(sqlite.dialect()))
_TIMES = [index for index, column in enumerate(_COLUMNS) if isinstance(column.type, UTCDateTime)]
# A row's values in column order, in one call into C.
_values_of = itemgetter(*(column.name for column in _COLUMNS))
# Both statements read the rows as a table ``batch`` and leave out those of a deleted offer
# (its cascade would have deleted them).
_INSERT = (
    f"INSERT INTO scan_event ({_NAMES}) {{with_batch}}SELECT {_NAMES} FROM {{batch}}"
    " WHERE batch.offer_id IS NULL"
    " OR EXISTS (SELECT 1 FROM offer WHERE offer.id = batch.offer_id)"
)
_PG_TYPES = ", ".join(
    f"{column.name} "
    + (
        "BIGINT"
        if isinstance(column.type, Integer)
        else column.type.compile(dialect=postgresql.dialect())  # type: ignore[no-untyped-call]
    )
    for column in _COLUMNS
)
# PostgreSQL: the rows as one JSON parameter; as arrays of values they cost the driver a
# Python call a value.
_PG_INSERT = _INSERT.format(
    with_batch="", batch=f"json_to_recordset(CAST(%(rows)s AS JSON)) AS batch({_PG_TYPES})"
)
# SQLite: one multi-row VALUES, not executemany: the driver lets go of the interpreter lock for
# every statement step, and getting it back from the busy event loop is what a batch mostly
# waited for. (A JSON parameter costs SQLite a parse of each row for every column.)
_SQLITE_ROWS_PER_INSERT = 999 // len(_COLUMNS)  # any SQLite build takes 999 parameters


@cache
def _sqlite_insert(count: int) -> str:
    row = f"({', '.join('?' for _ in _COLUMNS)})"
    # The WITH inside the INSERT: before it, the driver would not count the rows added.
    values = ", ".join([row] * count)
    return _INSERT.format(with_batch=f"WITH batch({_NAMES}) AS (VALUES {values}) ", batch="batch")


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
