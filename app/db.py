"""Engine, session dependency and the column types every domain shares."""

import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Annotated, Any, Final
from zoneinfo import ZoneInfo

from fastapi import Depends
from sqlalchemy import DateTime, Engine, MetaData, Select, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import (
    DisconnectionError,
    InterfaceError,
    OperationalError,
    PendingRollbackError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session, SQLModel, create_engine
from starlette.concurrency import run_in_threadpool

from app.config import get_settings
from app.files import make_private_dir

log = logging.getLogger(__name__)

# One naming convention so constraint names, and so migrations, are the same on both databases.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION
metadata: MetaData = SQLModel.metadata


# How long a backup's reader waits for SQLite's lock (a checkpoint, another process).
SQLITE_LOCK_TIMEOUT = 30.0
# How long a write waits for SQLite's one writer's lock without seeing it change hands before it
# gives up: the request then answers 503 with Retry-After. A few seconds: a holder that long is
# stuck (a backup, another process), and waiting behind it only makes the queue longer. A queue
# of short transactions that keeps moving is worth waiting in, up to QUEUE_WAIT_FACTOR times
# that: a burst of forty writers on a loaded machine is a queue, not an outage. Not longer: a
# waiter holds a request thread, and a proxy in front gives up after some 30 s.
SQLITE_WRITE_WAIT_SECONDS = 5.0
QUEUE_WAIT_FACTOR = 3
READ_ONLY: Final = "offertrack_read_only"
# A write transaction that fails at once, instead of waiting, when another writer holds SQLite's
# lock (the scan writer on the event loop, which must never wait for a lock).
NO_WAIT: Final = "offertrack_no_wait"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on both databases (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _WriterLock:
    """SQLite's one writer, for the threads of this process, as a lock they queue on.

    SQLite allows one writer; left to itself, a blocked writer polls with sleeps of up to
    100 ms (its busy handler), which under concurrent page views costs far more than the
    writes themselves. Threads of one process instead wait on a lock that is handed over the
    moment the previous transaction ends. Other processes still meet busy_timeout.

    ``handovers`` counts releases, so a waiter can tell a queue that moves (short
    transactions, one after another: worth waiting in) from a holder that is stuck.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.handovers = 0

    def acquire(self, stall_seconds: float) -> bool:
        """Wait while the lock keeps changing hands; give up after ``stall_seconds`` without a
        hand-over, or after ``QUEUE_WAIT_FACTOR`` times that in all."""
        deadline = time.monotonic() + stall_seconds * QUEUE_WAIT_FACTOR
        while True:
            seen = self.handovers
            slice_seconds = min(stall_seconds, deadline - time.monotonic())
            if slice_seconds <= 0:
                return False
            if self.lock.acquire(timeout=slice_seconds):
                return True
            if self.handovers == seen:
                return False

    def release(self) -> None:
        self.handovers += 1  # under the lock: only its holder writes it
        self.lock.release()


class _WriterQueue:
    """One ``_WriterLock`` per SQLite file within this process."""

    _locks: dict[str, _WriterLock] = {}
    _guard = threading.Lock()

    @classmethod
    def lock_for(cls, database: str) -> _WriterLock:
        with cls._guard:
            return cls._locks.setdefault(database, _WriterLock())


class WriterBusy(OperationalError):
    """A write waited its whole deadline for SQLite's writer lock: answered like a database
    that is away (503 with Retry-After), never as a 500."""

    def __init__(self, seconds: float) -> None:
        message = f"database is locked (waited {seconds:.1f} s for the writers before)"
        super().__init__("BEGIN IMMEDIATE", None, sqlite3.OperationalError(message))


class _QueuedWriterConnection(sqlite3.Connection):
    write_lock: "_WriterLock | None" = None
    write_wait_seconds = SQLITE_WRITE_WAIT_SECONDS
    holds_write_lock = False

    def acquire_write_lock(self, *, wait: bool = True, timeout: float | None = None) -> None:
        assert self.write_lock is not None
        started = time.monotonic()
        if not wait:
            acquired = self.write_lock.lock.acquire(blocking=False)
        elif timeout is not None:
            acquired = self.write_lock.lock.acquire(timeout=timeout)
        else:
            acquired = self.write_lock.acquire(self.write_wait_seconds)
        if not acquired:
            # SQLAlchemy's error, not the driver's: the "begin" event runs outside the code
            # that wraps driver errors, and a bare sqlite3 error would reach the client as a 500.
            raise WriterBusy(time.monotonic() - started)
        self.holds_write_lock = True

    def release_write_lock(self) -> None:
        if self.holds_write_lock and self.write_lock is not None:
            self.holds_write_lock = False
            self.write_lock.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.release_write_lock()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.release_write_lock()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.release_write_lock()


# Errors that mean "the database cannot be reached", not "this request is wrong": they become
# a 503 with Retry-After, and scan rows go to the spool. PendingRollbackError is what a session
# raises when it is used again after its connection died (PostgreSQL shutting down).
DB_UNREACHABLE = (
    OperationalError,
    InterfaceError,
    PoolTimeoutError,
    DisconnectionError,
    PendingRollbackError,
)
# An OperationalError says "the database cannot serve this now" (down, locked, out of room),
# but SQLite also says "this SQL names a column I lack" with it: the first is an outage (a 503
# with Retry-After), the second a bug, to log and answer as a 500. PostgreSQL tells them apart
# by SQLSTATE (its programming errors are ProgrammingError, but psycopg raises a few bugs, such
# as 54023 too many arguments, as OperationalError), SQLite by its result code.
PG_OUTAGE_CLASSES = frozenset({"08", "53", "57", "58"})  # connection, resources, shutdown, I/O
PG_OUTAGE_STATES = frozenset({"40001", "40P01", "55P03"})  # serialisation, deadlock, lock wait
SQLITE_OUTAGE_CODES = frozenset(
    {
        sqlite3.SQLITE_BUSY,  # "database is locked": another writer
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_CANTOPEN,  # "unable to open database file"
        sqlite3.SQLITE_IOERR,  # "disk I/O error"
        sqlite3.SQLITE_FULL,  # "database or disk is full"
        sqlite3.SQLITE_PROTOCOL,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_INTERRUPT,  # cancelled for taking too long, as PostgreSQL's 57014
    }
)  # not SQLITE_READONLY: a write inside a read_only() block is our bug


def is_outage(exc: BaseException) -> bool:
    """Whether a DB_UNREACHABLE error is the database being away (answered 503), not a bug."""
    if not isinstance(exc, OperationalError) or isinstance(exc, WriterBusy):
        return True
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    state = getattr(orig, "sqlstate", None)
    if isinstance(orig, sqlite3.Error):
        code = getattr(orig, "sqlite_errorcode", None)
        # A driver error without a result code (raised by our own code) is the lock's.
        return code is None or code & 0xFF in SQLITE_OUTAGE_CODES
    # libpq's own failures (refused, reset, timed out) carry no SQLSTATE.
    return state is None or state[:2] in PG_OUTAGE_CLASSES or state in PG_OUTAGE_STATES


PG_CONNECT_TIMEOUT_SECONDS = 2  # libpq's smallest
# A database host that goes silent mid-connection (a network partition, a host gone: the
# connection stays open, nothing answers) held a request until the kernel gave up on TCP,
# some fifteen minutes, with a request thread and a pooled connection. TCP now gives up once
# what we sent goes unacknowledged this long (tcp_user_timeout), or once an idle connection's
# keepalive probes do (a query sent, its answer never coming): the request then answers 503.
# Acknowledgements come from the server's kernel, never wait for a query: a slow query is
# not cut short, only a connection over which nothing gets through.
PG_SILENCE_SECONDS = 3
PG_TIMEOUTS: Final[dict[str, Any]] = {
    "connect_timeout": PG_CONNECT_TIMEOUT_SECONDS,
    "keepalives": 1,
    "keepalives_idle": PG_SILENCE_SECONDS,
    "keepalives_interval": 1,
    "keepalives_count": PG_SILENCE_SECONDS,
    "tcp_user_timeout": PG_SILENCE_SECONDS * 1000,
}


# SQLite has no time zones: the rollups' SQL calls this for the local day of a stored UTC time
# (PostgreSQL writes ``CAST(t AT TIME ZONE zone AS DATE)``).
LOCAL_DAY_FUNCTION: Final = "offertrack_local_day"


def local_day_sql(dialect: str, column: str) -> str:
    """SQL for the local date of a stored UTC time, in the zone the ``:zone`` parameter names."""
    if dialect == "sqlite":
        return f"{LOCAL_DAY_FUNCTION}({column}, :zone)"
    return f"CAST({column} AT TIME ZONE CAST(:zone AS TEXT) AS DATE)"


def insert_on_conflict(dialect: str, table: Any) -> Any:
    """``INSERT`` into ``table`` that can take ``ON CONFLICT ... DO NOTHING`` (or ``DO
    UPDATE``): both databases speak it, SQLAlchemy builds it per dialect."""
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)


def _unicode_lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def local_day_of_stored(stored: str, zone: str) -> str:
    """The local date, as SQLite stores dates, of a UTC time as SQLite stores it."""
    return _local_day(stored[:16], zone)  # zones differ from UTC by whole minutes


@lru_cache(maxsize=4096)
def _local_day(minute: str, zone: str) -> str:
    utc = datetime.fromisoformat(minute).replace(tzinfo=UTC)
    return utc.astimezone(_zone(zone)).date().isoformat()


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def make_engine(
    url: str, *, write_wait_seconds: float = SQLITE_WRITE_WAIT_SECONDS, **kwargs: Any
) -> Engine:
    if url.startswith("sqlite"):
        connect_args = {
            "check_same_thread": False,
            "timeout": write_wait_seconds,
            "factory": _QueuedWriterConnection,
        }
        if "poolclass" not in kwargs:
            # A connection for every request thread (anyio's 40) and the workers besides:
            # writers queue for SQLite's one lock (_WriterLock) holding their connection, and a
            # request that also had to queue for the pool's 15 (the default) timed out there
            # in a burst of writes. A SQLite connection costs a file handle and its page cache.
            kwargs.setdefault("pool_size", 10)
            kwargs.setdefault("max_overflow", 50)
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        _configure_sqlite(engine, write_wait_seconds)
        return engine
    # A statement waits this long for a row or table lock another transaction holds, then
    # fails (OperationalError: a 503 with Retry-After), as a SQLite write waits for the writer's
    # lock. Without it a staff save of an offer locked by a stuck transaction waited for as long
    # as that held: for ever, with a request thread and a pooled connection. Work that means to
    # wait its turn (retention, migrations) says so with SET LOCAL lock_timeout = 0.
    lock_wait = f"-c lock_timeout={round(write_wait_seconds * 1000)}"
    connect_args = {
        **PG_TIMEOUTS,
        "options": lock_wait,
        **kwargs.pop("connect_args", {}),
    }
    if "poolclass" not in kwargs:
        kwargs["pool_timeout"] = 5  # a full pool answers 503 soon, not after 30 s
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args, **kwargs)


def _configure_sqlite(engine: Engine, write_wait_seconds: float) -> None:
    write_lock = _WriterQueue.lock_for(str(engine.url.database))

    # pysqlite's own transaction handling breaks SAVEPOINT; SQLAlchemy's documented recipe is to
    # switch it off and emit BEGIN ourselves. IMMEDIATE takes the write lock up front, so two
    # writers queue instead of failing with "database is locked" mid-transaction.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.write_lock = write_lock
        dbapi_connection.write_wait_seconds = write_wait_seconds
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={round(write_wait_seconds * 1000)}")
        cursor.close()
        dbapi_connection.create_function(
            LOCAL_DAY_FUNCTION, 2, local_day_of_stored, deterministic=True
        )
        # SQLite's own lower() folds ASCII only, so a search lowered in Python ("ελληνικά")
        # never met a Greek or accented name lowered in SQL; PostgreSQL's folds every letter.
        dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            # WAL readers never block and are never blocked: no queue, no write lock.
            connection.exec_driver_sql("BEGIN DEFERRED")
            return
        dbapi_connection = connection.connection.dbapi_connection
        dbapi_connection.acquire_write_lock(
            wait=not connection.get_execution_options().get(NO_WAIT)
        )
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            dbapi_connection.release_write_lock()
            raise


@lru_cache
def get_engine() -> Engine:
    settings = get_settings()
    if settings.is_sqlite:
        make_private_dir(settings.var_dir)
    return make_engine(settings.database_url, write_wait_seconds=settings.write_wait_seconds)


async def get_session() -> AsyncIterator[Session]:
    """A session per request. Opening one costs no I/O, and neither does closing one whose
    work was committed or ended, so only a session left mid-transaction is closed in a thread:
    most requests never leave the event loop for it."""
    session = new_session()
    try:
        yield session
    finally:
        if session.in_transaction():
            await run_in_threadpool(session.close)
        else:
            session.close()


SessionFactory = Callable[[], AbstractContextManager[Session]]


def new_session() -> Session:
    return Session(get_engine(), expire_on_commit=False)


async def get_session_factory() -> SessionFactory:
    """For views that need the database only sometimes (a cached page): they open a session
    when they must, in a thread, instead of having one handed to every request."""
    return new_session


@contextmanager
def read_only(session: Session) -> Iterator[Session]:
    """Run a use case's reads in a transaction of their own that ends with the block.

    On SQLite such a transaction stays out of the writers' queue (WAL readers never wait), and
    ending it returns the connection at once, so a request never holds two connections.
    """
    began = not session.in_transaction()
    if began:
        session.connection(execution_options={READ_ONLY: True})
    try:
        yield session
    except BaseException:
        # Never commit after the body failed: on a connection that died with it (PostgreSQL
        # shutting down) the commit raises an error of its own that would hide the real one.
        if began:
            _roll_back_quietly(session)
        raise
    if began:
        session.commit()


def _roll_back_quietly(session: Session) -> None:
    try:
        session.rollback()
    except Exception:  # the connection is gone; the pool throws it away
        log.debug("rolling back a read-only transaction failed", exc_info=True)


def nothing_to_claim(engine: Engine, query: Select[Any]) -> bool:
    """Whether a worker's claim would find nothing, read without taking a writer's lock.

    On SQLite a claim's transaction takes the one writer's lock; a worker polling an empty
    queue every second would take it for nothing, and the scan writer would meet it held.
    PostgreSQL's claims lock only the rows they find (SKIP LOCKED): they need no look first.
    """
    if engine.dialect.name != "sqlite":
        return False
    with engine.connect().execution_options(**{READ_ONLY: True}) as connection:
        return connection.execute(query.limit(1)).first() is None


SessionDep = Annotated[Session, Depends(get_session)]
SessionFactoryDep = Annotated[SessionFactory, Depends(get_session_factory)]
