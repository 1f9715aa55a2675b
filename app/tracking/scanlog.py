"""Where scan rows are committed: a page is sent only after its scan row is durable (the
writer of ARCHITECTURE.md's scan path)."""

import asyncio
import logging
import threading
import time
from collections import deque
from typing import Any, Protocol

from sqlalchemy import Engine, text

from app.errors import ServiceUnavailable
from app.metrics import (
    SCAN_COMMIT_SECONDS,
    SCAN_SPOOL_BYTES,
    SCANS_DROPPED,
    SCANS_HELD,
    SCANS_RECORDED,
    SCANS_REFUSED,
    SCANS_SPOOLED,
)
from app.tracking.scanrows import BadRow, Batches, batches_for, insert_scans
from app.tracking.spool import ScanSpool

log = logging.getLogger(__name__)
MAX_BATCH = 500
SPOOL_AFTER_SECONDS = 1.0
# After a failed commit, batches go straight to the spool for this long instead of waiting on
# a database that is most likely still away; then the next batch tries it again.
RETRY_DATABASE_AFTER_SECONDS = 1.0
HOUSEKEEPING_SECONDS = 0.5
REPLAY_EVERY = 4  # housekeeping rounds
# /readyz fails while the last write failed, for this long after it.
HEALTH_WINDOW_SECONDS = 30.0
HOLD_LIMIT = 20_000


class ScanNotRecorded(ServiceUnavailable):
    title = "Status temporarily unavailable"

    def __init__(self) -> None:
        super().__init__("We could not record this visit just now. Please try again in a moment.")


class ScanLog(Protocol):
    async def record(self, row: dict[str, Any], *, hold: bool = False) -> None:
        """Return once ``row`` is durable; raise ScanNotRecorded if it cannot be. With
        ``hold``, a row that can be stored nowhere is kept in memory rather than refused."""


# A row, what waits for it, and whether it may be held in memory.
_Pending = tuple[dict[str, Any], "asyncio.Future[None]", bool]


class ScanWriter:
    """Batches the rows of each event loop's views (``record``).

    A housekeeping thread replays the spool, retries the rows held in memory and, on SQLite,
    copies the write-ahead log into the database file (``checkpoint``).
    """

    def __init__(
        self, engine: Engine, *, spool: ScanSpool | None = None, hold_limit: int = HOLD_LIMIT
    ) -> None:
        self._engine = engine
        self._spool = spool
        self._hold_limit = hold_limit
        self._held: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()
        self._batchers: dict[asyncio.AbstractEventLoop, _Batcher] = {}
        self._away_until = 0.0
        self._ok_at = time.monotonic()
        self._failed_at = 0.0
        self._failure = ""
        self._stopping = threading.Event()
        self._housekeeping = threading.Thread(
            target=self._housekeep, name="scan-writer-housekeeping", daemon=True
        )
        self._housekeeping.start()

    async def record(self, row: dict[str, Any], *, hold: bool = False) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        batcher = self._batchers.get(loop) or self._new_batcher(loop)
        batcher.add((row, done, hold))
        try:
            await done
        except Exception as exc:
            raise ScanNotRecorded() from exc

    def write_problem(self) -> str | None:
        """Why writes fail just now, for /readyz; None while they succeed."""
        if held := len(self._held):
            return f"{held} scan events held in memory: neither database nor spool takes them"
        if self._failed_at > max(self._ok_at, time.monotonic() - HEALTH_WINDOW_SECONDS):
            return f"scan events cannot be committed ({self._failure})"
        return None

    def _succeeded(self, started: float | None = None) -> None:
        self._ok_at = time.monotonic()
        if started is not None:
            SCAN_COMMIT_SECONDS.observe(time.perf_counter() - started)

    def _failed(self, exc: BaseException) -> None:
        self._failed_at = time.monotonic()
        self._failure = f"{type(exc).__name__}: {exc}"[:200]

    def _new_batcher(self, loop: asyncio.AbstractEventLoop) -> "_Batcher":
        with self._lock:
            for gone in [known for known in self._batchers if known.is_closed()]:
                self._batchers.pop(gone).close()
            batcher = self._batchers[loop] = _Batcher(self, loop)
        return batcher

    async def _store(self, db: Batches, batch: list[_Pending]) -> None:
        left = await self._commit(db, batch) if time.monotonic() >= self._away_until else batch
        if left:
            await self._keep(left)

    async def _commit(self, db: Batches, batch: list[_Pending]) -> list[_Pending]:
        """Commit ``batch``; returns what the database could not take."""
        started = time.perf_counter()
        try:
            await db.insert([row for row, _, _ in batch])
        except BadRow as exc:  # a bug, not an outage: the spool would refuse them as well
            log.error("scan events refused by the database: %s", exc)
            SCANS_REFUSED.inc(len(batch))
            _settle(batch, exc)
            return []
        except Exception as exc:
            log.warning("scan events not committed within %g s (%s)", SPOOL_AFTER_SECONDS, exc)
            self._failed(exc)
            self._away_until = time.monotonic() + RETRY_DATABASE_AFTER_SECONDS
            return batch
        self._succeeded(started)
        SCANS_RECORDED.inc(len(batch))
        _settle(batch, None)
        return []

    async def _keep(self, batch: list[_Pending]) -> None:
        """Spool what the database could not take; failing that, hold what may be held."""
        rows = [row for row, _, _ in batch]
        try:
            if self._spool is None:
                raise ScanNotRecorded()
            await asyncio.to_thread(self._spool_rows, rows)
        except Exception as exc:
            log.error("scan events could be neither committed nor spooled: %r", exc)
            self._failed(exc)
            held = [item for item in batch if item[2]]
            self._hold([row for row, _, _ in held])
            _settle(held, None)
            _settle([item for item in batch if not item[2]], exc)
            return
        _settle(batch, None)

    def _spool_rows(self, rows: list[dict[str, Any]]) -> None:
        assert self._spool is not None
        self._spool.append(rows)
        SCANS_SPOOLED.inc(len(rows))
        SCAN_SPOOL_BYTES.set(self._spool.size())

    def _hold(self, rows: list[dict[str, Any]]) -> None:
        with self._lock:
            room = max(0, self._hold_limit - len(self._held))
            self._held.extend(rows[:room])
            SCANS_HELD.set(len(self._held))
        dropped = len(rows) - room
        if dropped > 0:
            SCANS_DROPPED.inc(dropped)
            log.error("%d campaign scan events dropped: the memory buffer is full", dropped)

    def flush_held(self) -> int:
        """Store the rows held in memory in the database or the spool; returns how many."""
        with self._lock:
            rows = list(self._held)
            self._held.clear()
        if not rows:
            return 0
        try:
            self._store_now(rows)
        except Exception as exc:
            log.info("scan events held in memory not stored yet: %s", exc)
            with self._lock:  # still nowhere to put them: keep them, oldest first
                self._held.extendleft(reversed(rows))
            return 0
        finally:
            SCANS_HELD.set(len(self._held))
        log.info("%d scan events held in memory are stored", len(rows))
        return len(rows)

    def _store_now(self, rows: list[dict[str, Any]]) -> None:
        started = time.perf_counter()
        try:
            with self._engine.begin() as connection:
                insert_scans(connection, rows)
        except Exception:
            if self._spool is None:
                raise
            self._spool_rows(rows)
            return
        self._succeeded(started)
        SCANS_RECORDED.inc(len(rows))

    def replay_spool(self) -> int:
        """Replay spooled rows if the database answers; returns how many were added."""
        if self._spool is None or time.monotonic() < self._away_until:
            return 0
        if self._spool.has_active_file():
            with self._engine.connect() as connection:  # raises while it is still away
                connection.execute(text("SELECT 1"))
            self._spool.seal()
        added = self._spool.replay(self._engine)
        if added:  # (a writer with nothing spooled leaves the gauge to the one that has)
            SCAN_SPOOL_BYTES.set(self._spool.size())
            # Committed rows show that writes work again: /readyz must not wait for a view.
            self._succeeded()
        return added

    def _housekeep(self) -> None:
        rounds = 0
        while not self._stopping.wait(HOUSEKEEPING_SECONDS):
            rounds += 1
            try:
                if self._engine.dialect.name == "sqlite":
                    self.checkpoint()
                if rounds % REPLAY_EVERY == 0:
                    self.flush_held()
                    self.replay_spool()
            except Exception as exc:  # the database is still away: the next round tries again
                log.info("spooled scan events not replayed yet: %s", exc)

    def checkpoint(self) -> None:
        """Copy SQLite's write-ahead log into the database file, here rather than in the
        writer's commits on the loop (it syncs the disk, and the loop must not wait for that).

        RESTART, not PASSIVE: it waits for the writer of the moment and holds off the next, so
        that the log is copied whole and the next write starts it over (under constant writes
        a PASSIVE checkpoint never catches up, and the log grows without end). It waits at
        most CHECKPOINT_WAIT_MS, for a writer or a long read, then copies what it can.
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

    def close(self) -> None:
        self._stopping.set()
        self._housekeeping.join(timeout=10)
        with self._lock:
            batchers, self._batchers = list(self._batchers.values()), {}
        for batcher in batchers:
            batcher.close()
        self.flush_held()
        if self._spool is not None:
            self._spool.seal()  # what this process spooled is left for the next to replay


CHECKPOINT_WAIT_MS = 100


class _Batcher:
    """One event loop's rows: each batch is what arrived while the previous one was stored."""

    def __init__(self, writer: ScanWriter, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._writer = writer
        self._db = batches_for(writer._engine, SPOOL_AFTER_SECONDS)
        self._pending: list[_Pending] = []
        self._storing: asyncio.Task[None] | None = None

    def add(self, item: _Pending) -> None:
        self._pending.append(item)
        if self._storing is None:
            self._storing = self.loop.create_task(self._store_all())

    async def _store_all(self) -> None:
        try:
            while self._pending:
                # One more round of the loop: the requests it reads meanwhile join the batch (a
                # commit costs the loop much the same for 5 rows as for 30).
                await asyncio.sleep(0)
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                await self._writer._store(self._db, batch)
        finally:
            self._storing = None

    def close(self) -> None:
        self._db.close()


def _settle(batch: list[_Pending], error: BaseException | None) -> None:
    for _, done, _ in batch:
        if done.done():  # the view gave up waiting (client gone)
            continue
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)
