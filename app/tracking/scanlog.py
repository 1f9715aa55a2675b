"""Where scan rows are committed. A page is sent only after its scan row is durable.

Committing each view on its own makes the writers queue for the database one by one, which
is the tracking page's main cost under load. GroupCommitScanLog lets writer threads commit
the rows of all views waiting at that moment in one transaction; every view still waits for
the commit of its own row before its page is sent, so nothing is fire-and-forget.

When the database cannot be reached, the rows go to the local spool file instead (fsynced
before the views answer) and are replayed once it answers again (app/tracking/spool.py).
"""

import asyncio
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol, Union

import psycopg
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from app.db import NO_WAIT, PG_CONNECT_TIMEOUT_SECONDS
from app.errors import ServiceUnavailable
from app.metrics import SCANS_RECORDED, SCANS_SPOOLED
from app.tracking.scanrows import hooks_all_in_sql, insert_scans, postgresql_batch
from app.tracking.spool import ScanSpool

log = logging.getLogger(__name__)
MAX_BATCH = 500
COMMIT_TIMEOUT_SECONDS = 10.0


class ScanNotRecorded(ServiceUnavailable):
    title = "Status temporarily unavailable"

    def __init__(self) -> None:
        super().__init__("We could not record this visit just now. Please try again in a moment.")


class ScanLog(Protocol):
    async def record(self, row: dict[str, Any]) -> None:
        """Return once ``row`` is committed; raise ScanNotRecorded if it cannot be. The caller
        must not hold an open write transaction (on SQLite it would block the commit)."""


class SessionScanLog:
    """Commits each row in a given session (tests, one-off tools)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def write(self, row: dict[str, Any]) -> None:
        insert_scans(self._session.connection(), [row])
        self._session.commit()

    async def record(self, row: dict[str, Any]) -> None:
        await run_in_threadpool(self.write, row)


# A row and what waits for its commit: a thread's Future, or a view's asyncio future.
_Waiter = Union["Future[None]", "asyncio.Future[None]"]
_Pending = tuple[dict[str, Any], _Waiter]
# After a failed commit, writers spool at once for this long instead of waiting on a database
# that is most likely still away; then the next batch tries it again.
RETRY_DATABASE_AFTER_SECONDS = 1.0
REPLAY_INTERVAL_SECONDS = 2.0
# How often the log the loop writer fills is copied into SQLite's database file: at a thousand
# scans a second it grows some 5 MB a second, and SQLite's own checkpoints (every 1000 pages,
# about 4 MB) kept it near that size.
CHECKPOINT_INTERVAL_SECONDS = 0.5
CHECKPOINT_WAIT_MS = 100


class GroupCommitScanLog:
    """Commits the rows of concurrent views together; each caller waits for its commit.

    ``writers`` threads take batches from one queue, each on a connection of its own: on
    PostgreSQL a commit waits for the disk, and a second writer commits the next batch
    meanwhile. SQLite has one writer at a time anyway, so one thread suffices there.
    With a ``spool``, rows the database cannot take are kept in it, and replayed later.

    The views' rows are committed from the event loop itself: a writer thread spent most of a
    batch handing the interpreter lock back and forth with the loop. On SQLite the loop writer
    (``_LoopWriter``) commits a batch in a millisecond or two; on PostgreSQL
    (``_PostgresLoopWriter``) it sends the batch as one statement and serves pages until the
    database answers. Whatever a loop writer cannot commit at once (SQLite's lock is taken,
    an error) goes to the writer threads, which wait, split bad rows and spool as above.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        writers: int = 1,
        spool: ScanSpool | None = None,
        on_loop: bool | None = None,
    ) -> None:
        self._engine = engine
        self._spool = spool
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._down_until = 0.0
        self._on_loop = True if on_loop is None else on_loop
        self._loop_writer: _LoopWriter | _PostgresLoopWriter | None = None
        self._deadlines: _Deadlines | None = None
        self._threads = [
            threading.Thread(target=self._run, name=f"scan-writer-{n}", daemon=True)
            for n in range(writers)
        ]
        self._stopping = threading.Event()
        if spool is not None:
            self._threads.append(
                threading.Thread(target=self._replay_loop, name="scan-spool-replay", daemon=True)
            )
        if self._on_loop and engine.dialect.name == "sqlite":
            self._threads.append(
                threading.Thread(
                    target=self._checkpoint_loop, name="scan-log-checkpoint", daemon=True
                )
            )
        for thread in self._threads:
            thread.start()

    def write(self, session: Session, row: dict[str, Any]) -> None:
        """``record`` for a thread that has a session of its own."""
        if session.in_transaction():
            # On SQLite a caller's open write transaction holds the one writer's lock, which
            # the writer thread needs for this very row: end it first, or both wait forever.
            session.commit()
        try:
            self.submit(row).result(timeout=COMMIT_TIMEOUT_SECONDS)
        except Exception as exc:
            raise ScanNotRecorded() from exc

    async def record(self, row: dict[str, Any]) -> None:
        # An asyncio future, settled from the writer thread together with the rest of its
        # batch (one wake-up of the event loop a batch, not one a row).
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        writer = self._loop_writer_for(loop)
        if writer is None:
            self._queue.put((row, done))
        else:
            writer.add((row, done))
        self._deadlines_for(loop).watch(done)
        try:
            await done
        except Exception as exc:
            raise ScanNotRecorded() from exc

    def submit(self, row: dict[str, Any]) -> "Future[None]":
        """Queue ``row``; the future is done once it is committed (or spooled)."""
        done: Future[None] = Future()
        self._queue.put((row, done))
        return done

    def _loop_writer_for(
        self, loop: asyncio.AbstractEventLoop
    ) -> "_LoopWriter | _PostgresLoopWriter | None":
        if not self._on_loop or time.monotonic() < self._down_until:
            return None  # the threads spool while the database is away
        writer = self._loop_writer
        if writer is None or writer.loop.is_closed():
            if writer is not None:
                writer.close()
            if self._engine.dialect.name == "sqlite":
                writer = _LoopWriter(self._engine, loop, self._hand_over)
            elif hooks_all_in_sql():
                writer = _PostgresLoopWriter(self._engine, loop, self._hand_over)
            else:
                return None  # a hook that runs in Python needs the threads' transactions
            self._loop_writer = writer
        return writer if writer.loop is loop else None

    def _deadlines_for(self, loop: asyncio.AbstractEventLoop) -> "_Deadlines":
        deadlines = self._deadlines
        if deadlines is None or deadlines.loop is not loop:
            deadlines = self._deadlines = _Deadlines(loop)
        return deadlines

    def _hand_over(self, batch: list[_Pending], *, database_away: bool = False) -> None:
        if database_away:
            # The threads spool at once rather than wait for a connection in their turn.
            self._down_until = time.monotonic() + RETRY_DATABASE_AFTER_SECONDS
        for item in batch:
            self._queue.put(item)

    def close(self) -> None:
        if self._loop_writer is not None:
            self._loop_writer.close()
        self._stopping.set()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=COMMIT_TIMEOUT_SECONDS)
        if self._spool is not None:
            self._spool.seal()  # what this process spooled is left for the next to replay

    def replay_spool(self) -> int:
        """Replay spooled rows if the database answers; returns how many were added."""
        if self._spool is None or time.monotonic() < self._down_until:
            return 0
        if self._spool.has_active_file():
            with self._engine.connect() as connection:  # raises while it is still away
                connection.execute(text("SELECT 1"))
            self._spool.seal()
        return self._spool.replay(self._engine)

    def _replay_loop(self) -> None:
        while not self._stopping.wait(REPLAY_INTERVAL_SECONDS):
            try:
                self.replay_spool()
            except Exception as exc:  # the database is still away: the next round tries again
                log.info("spooled scan events not replayed yet: %s", exc)

    def _checkpoint_loop(self) -> None:
        while not self._stopping.wait(CHECKPOINT_INTERVAL_SECONDS):
            self.checkpoint()

    def checkpoint(self) -> None:
        """Copy SQLite's write-ahead log into the database file, here rather than in the loop
        writer's commits (it syncs the disk, and the loop must not wait for that).

        RESTART, not PASSIVE: it waits for the writer of the moment and holds off the next
        (the loop writer hands its batch to the threads meanwhile), so that the log is copied
        whole and the next write starts it over; under constant writes a PASSIVE checkpoint
        never catches up, and the log grows without end. It waits at most
        CHECKPOINT_WAIT_MS, for a writer or for a long read (an export, a backup), and then
        copies what it can as PASSIVE would: writers are never held up longer than that.
        """
        try:
            with self._engine.connect() as connection:
                connection.detach()  # its busy timeout below must not reach the pool
                raw = connection.connection.dbapi_connection
                assert raw is not None
                raw.execute(f"PRAGMA busy_timeout={CHECKPOINT_WAIT_MS}")
                raw.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
        except Exception as exc:  # the next round tries again
            log.info("write-ahead log not checkpointed: %s", exc)

    def _run(self) -> None:
        writer = _Writer(self._engine)
        try:
            while (batch := self._next_batch()) is not None:
                self._commit(writer, batch)
        finally:
            writer.close()

    def _next_batch(self) -> list[_Pending] | None:
        first = self._queue.get()
        if first is None:
            return None
        batch = [first]
        while len(batch) < MAX_BATCH:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # finish this batch, then stop
                break
            batch.append(item)
        return batch

    def _commit(self, writer: "_Writer", batch: list[_Pending]) -> None:
        if time.monotonic() < self._down_until:
            self._spool_batch(batch, None)
            return
        try:
            writer.insert([row for row, _ in batch])
        except IntegrityError as exc:
            if len(batch) == 1:
                log.error("a scan event was refused by the database: %s", exc)
                _settle(batch, exc)
                return
            # One bad row must not fail its neighbours: try each on its own.
            for item in batch:
                self._commit(writer, [item])
            return
        except Exception as exc:
            log.warning("scan events could not be committed (%s): spooling them", exc)
            self._down_until = time.monotonic() + RETRY_DATABASE_AFTER_SECONDS
            self._spool_batch(batch, exc)
            return
        _settle(batch, None)

    def _spool_batch(self, batch: list[_Pending], cause: Exception | None) -> None:
        try:
            if self._spool is None:
                raise ScanNotRecorded() from cause
            self._spool.append([row for row, _ in batch])
            SCANS_SPOOLED.inc(len(batch))
        except Exception as exc:
            log.exception("scan events could be neither committed nor spooled")
            _settle(batch, exc)
            return
        _settle(batch, None)


def _settle(batch: list[_Pending], error: BaseException | None) -> None:
    """Tell every waiter of ``batch`` how its row went: the threads' futures at once, the
    views' asyncio futures in one callback per event loop."""
    views: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for _, done in batch:
        if isinstance(done, asyncio.Future):
            views.setdefault(done.get_loop(), []).append(done)
        elif error is None:
            done.set_result(None)
        else:
            done.set_exception(error)
    for loop, futures in views.items():
        try:
            loop.call_soon_threadsafe(_settle_views, futures, error)
        except RuntimeError:  # that loop is closed: nobody waits there any more
            pass


def _settle_views(futures: list["asyncio.Future[None]"], error: BaseException | None) -> None:
    for done in futures:
        if done.done():  # the view gave up waiting (timeout, client gone)
            continue
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)


def _committed(batch: list[_Pending]) -> None:
    """A loop writer's batch is committed: its views' futures, on their own loop, are done."""
    SCANS_RECORDED.inc(len(batch))
    for _, done in batch:
        if not done.done():  # the view gave up waiting (timeout, client gone)
            done.set_result(None)


class _Deadlines:
    """Fails the views' futures still waiting COMMIT_TIMEOUT_SECONDS after they were queued.

    One timer for all views of a loop: an ``asyncio.timeout`` around each view's wait cost a
    timer handle in the loop's heap, and its cancellation, for every page (some 5% of a view).
    Futures are watched in the order they were queued, so their deadlines come in order too.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._waiting: deque[tuple[float, asyncio.Future[None]]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, done: "asyncio.Future[None]") -> None:
        self._waiting.append((self.loop.time() + COMMIT_TIMEOUT_SECONDS, done))
        if self._timer is None:
            self._timer = self.loop.call_later(COMMIT_TIMEOUT_SECONDS, self._expire)

    def _expire(self) -> None:
        now = self.loop.time()
        waiting = self._waiting
        while waiting and (waiting[0][0] <= now or waiting[0][1].done()):
            _, done = waiting.popleft()
            if not done.done():
                done.set_exception(TimeoutError("scan not committed in time"))
        self._timer = self.loop.call_at(waiting[0][0], self._expire) if waiting else None


class _LoopWriter:
    """Commits rows on the event loop, in batches: every row added while the loop works
    through the requests at hand goes into one transaction, run once they are done.

    It never waits: its transactions take SQLite's lock without queueing for it, and its
    connection has no busy timeout; a batch that cannot be committed at once, for any
    reason, is handed to the writer threads whole (nothing of it was committed). Its own
    commits never checkpoint the write-ahead log (GroupCommitScanLog.checkpoint does, in a
    thread).
    """

    def __init__(
        self,
        engine: Engine,
        loop: asyncio.AbstractEventLoop,
        hand_over: Callable[[list[_Pending]], None],
    ) -> None:
        self.loop = loop
        self._engine = engine
        self._hand_over = hand_over
        self._pending: list[_Pending] = []
        self._connection: Connection | None = None

    def add(self, item: _Pending) -> None:
        self._pending.append(item)
        if len(self._pending) == 1:
            self.loop.call_soon(self._flush_next_round)

    def _flush_next_round(self) -> None:
        # A batch's commit costs the loop much the same for 5 rows as for 30: waiting one more
        # round of the loop lets the requests it reads meanwhile join the batch. An idle loop
        # goes round at once; a busy one (the round serves some 15 requests) halves the
        # commits' cost a page, for a few milliseconds more before its page is sent.
        self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        try:
            connection = self._connected()
            with connection.begin():
                insert_scans(connection, [row for row, _ in batch])
        except Exception as exc:
            log.debug("scan batch handed to the writer threads: %s", exc)
            if isinstance(exc, DBAPIError) and exc.connection_invalidated:
                self.close()
            self._hand_over(batch)
            return
        _committed(batch)

    def _connected(self) -> Connection:
        if self._connection is None:
            connection = self._engine.connect().execution_options(**{NO_WAIT: True})
            connection.detach()  # its settings below must not reach the pool
            raw = connection.connection.dbapi_connection
            assert raw is not None
            raw.execute("PRAGMA busy_timeout=0")  # another process's lock: hand over at once
            raw.execute("PRAGMA wal_autocheckpoint=0")
            self._connection = connection
        return self._connection

    def close(self) -> None:
        """Hand what is still waiting to the threads, and let go of the connection."""
        batch, self._pending = self._pending, []
        if batch:
            self._hand_over(batch)
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # it is being thrown away
                log.debug("closing the loop writer's connection failed", exc_info=True)


# How the loop writer's connection shows in pg_stat_activity.
LOOP_WRITER_APPLICATION_NAME = "offertrack scan writer"


class _HandOver(Protocol):
    def __call__(self, batch: list[_Pending], *, database_away: bool = False) -> None: ...


class _PostgresLoopWriter:
    """Commits rows from the event loop on PostgreSQL: each batch is one statement
    (app.tracking.scanrows.postgresql_batch) on an async connection in autocommit mode, its
    own transaction. The loop serves pages while the database commits; the rows added
    meanwhile make the next batch, sent as soon as the database has answered.

    Like the SQLite loop writer it never waits for trouble: a batch that fails, for any
    reason, goes to the writer threads whole (a failed statement commits nothing), and they
    split bad rows and spool as they do for their own batches.
    """

    def __init__(
        self,
        engine: Engine,
        loop: asyncio.AbstractEventLoop,
        hand_over: "_HandOver",
    ) -> None:
        self.loop = loop
        self._hand_over = hand_over
        args, options = engine.dialect.create_connect_args(engine.url)
        options.pop("context", None)  # SQLAlchemy's adapters; this connection needs none
        options.setdefault("application_name", LOOP_WRITER_APPLICATION_NAME)
        self._connect_args = (args, {**options, "connect_timeout": PG_CONNECT_TIMEOUT_SECONDS})
        self._pending: list[_Pending] = []
        self._sending: asyncio.Task[None] | None = None
        self._connection: psycopg.AsyncConnection[Any] | None = None
        self._closed = False

    def add(self, item: _Pending) -> None:
        self._pending.append(item)
        if self._sending is None:
            # Runs once the loop has taken the requests at hand: their rows join this batch.
            self._sending = self.loop.create_task(self._send_all())

    async def _send_all(self) -> None:
        try:
            while self._pending and not self._closed:
                batch, self._pending = self._pending, []
                await self._send(batch)
        finally:
            self._sending = None
            if self._closed:
                self._disconnect()

    async def _send(self, batch: list[_Pending]) -> None:
        if not hooks_all_in_sql():
            # A hook that runs in Python, registered since this writer began, needs the
            # threads' transactions.
            self._hand_over(batch)
            return
        try:
            connection = self._connection or await self._connected()
        except Exception as exc:
            log.info("scan writer could not connect (%s): spooling", exc)
            self._hand_over(batch, database_away=True)
            return
        try:
            statement, params = postgresql_batch([row for row, _ in batch])
            await connection.execute(statement, params)
        except Exception as exc:
            log.debug("scan batch handed to the writer threads: %s", exc)
            if connection.broken:
                self._disconnect()
            self._hand_over(batch)
            return
        _committed(batch)

    async def _connected(self) -> "psycopg.AsyncConnection[Any]":
        args, options = self._connect_args
        connecting = psycopg.AsyncConnection.connect(*args, autocommit=True, **options)
        # Past the deadline the batch is spooled (see _send), and the database counts as away
        # for RETRY_DATABASE_AFTER_SECONDS; the batch after that tries again.
        self._connection = await asyncio.wait_for(connecting, CONNECT_DEADLINE_SECONDS)
        return self._connection

    def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            # What the async close() does for a connection of no pool, without a coroutine:
            # close() may be called from another thread, or once the loop is gone.
            connection.pgconn.finish()

    def close(self) -> None:
        """Hand what is still waiting to the threads, and let go of the connection (once the
        batch in flight, if any, is answered)."""
        self._closed = True
        batch, self._pending = self._pending, []
        if batch:
            self._hand_over(batch)
        if self._sending is None:
            self._disconnect()


# A view waits for its scan's commit, so the writer must not wait longer than a visitor would
# for a connection: a silent database host holds a connection attempt for the driver's connect
# timeout (2 s at the least). Past this the batch is spooled instead; the attempt goes on in
# the background and, if it succeeds, serves the next batch. It only connects, so no row can
# reach the database that way as well as the spool.
CONNECT_DEADLINE_SECONDS = 0.5


class DatabaseSlow(Exception):
    def __init__(self) -> None:
        super().__init__(f"no database connection within {CONNECT_DEADLINE_SECONDS} s")


class _Writer:
    """One writer thread's connection, kept between batches (no checkout and ping each time)
    and replaced after it fails."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Connection | None = None
        self._connecting: Future[Connection] | None = None

    def insert(self, rows: list[dict[str, Any]]) -> None:
        connection = self._connected()
        try:
            with connection.begin():
                insert_scans(connection, rows)
            SCANS_RECORDED.inc(len(rows))
        except IntegrityError:
            raise  # a bad row; the connection is fine
        except Exception:
            self.close(failed=True)
            raise

    def _connected(self) -> Connection:
        if self._connection is not None:
            return self._connection
        if self._connecting is None:
            self._connecting = Future()
            threading.Thread(
                target=self._connect,
                args=(self._connecting,),
                name="scan-writer-connect",
                daemon=True,
            ).start()
        try:
            self._connection = self._connecting.result(timeout=CONNECT_DEADLINE_SECONDS)
        except TimeoutError:
            raise DatabaseSlow() from None  # still connecting: the next batch asks again
        finally:
            if self._connecting.done():
                self._connecting = None
        return self._connection

    def _connect(self, result: "Future[Connection]") -> None:
        try:
            result.set_result(self._engine.connect())
        except Exception as exc:
            result.set_exception(exc)

    def close(self, *, failed: bool = False) -> None:
        if self._connecting is not None:  # a connection that comes after all is not kept
            self._connecting.add_done_callback(_close_connected)
            self._connecting = None
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            if failed:
                connection.invalidate()  # not back into the pool
            connection.close()
        except Exception:  # it is being thrown away
            log.debug("closing a scan writer connection failed", exc_info=True)


def _close_connected(attempt: "Future[Connection]") -> None:
    if attempt.exception() is None:
        attempt.result().close()
