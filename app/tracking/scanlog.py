"""Where scan rows are committed. A page is sent only after its scan row is committed.

Committing each view on its own makes the writers queue for the database one by one, which
is the tracking page's main cost under load. GroupCommitScanLog lets one writer thread commit
the rows of all views waiting at that moment in one transaction; every view still waits for
the commit of its own row before its page is sent, so nothing is fire-and-forget.
"""

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, Table, insert
from sqlmodel import Session

from app.errors import ServiceUnavailable
from app.tracking.models import ScanEvent

log = logging.getLogger(__name__)
MAX_BATCH = 500
COMMIT_TIMEOUT_SECONDS = 10.0


class ScanNotRecorded(ServiceUnavailable):
    title = "Status temporarily unavailable"

    def __init__(self) -> None:
        super().__init__("We could not record this visit just now. Please try again in a moment.")


ScanInsertHook = Callable[[Connection, Sequence[dict[str, Any]], Sequence[int]], None]
_insert_hooks: list[ScanInsertHook] = []


def on_scans_inserted(hook: ScanInsertHook) -> None:
    """Run ``hook`` in the transaction that inserts scan rows, with their ids: app.analytics
    keeps its daily rollup and writes scan.created webhook events this way, committed (or not)
    together with the scans. A hook that raises fails the rows like a failed insert."""
    if hook not in _insert_hooks:
        _insert_hooks.append(hook)


def insert_scans(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if not _insert_hooks:
        connection.execute(insert(ScanEvent), list(rows))
        return
    table: Table = ScanEvent.__table__  # type: ignore[attr-defined]
    statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    ids: Sequence[int] = connection.execute(statement, list(rows)).scalars().all()
    for hook in _insert_hooks:
        hook(connection, rows, ids)


class ScanLog(Protocol):
    def write(self, session: Session, row: dict[str, Any]) -> None:
        """Return once ``row`` is committed; raise ScanNotRecorded if it cannot be."""


class SessionScanLog:
    """Commits each row in the caller's own session (tests, one-off tools)."""

    def write(self, session: Session, row: dict[str, Any]) -> None:
        insert_scans(session.connection(), [row])
        session.commit()


_Pending = tuple[dict[str, Any], "Future[None]"]


class GroupCommitScanLog:
    """Commits the rows of concurrent views together; each caller waits for its commit."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="scan-writer", daemon=True)
        self._thread.start()

    def write(self, session: Session, row: dict[str, Any]) -> None:
        if session.in_transaction():
            # On SQLite a caller's open write transaction holds the one writer's lock, which
            # the writer thread needs for this very row: end it first, or both wait forever.
            session.commit()
        try:
            self.submit(row).result(timeout=COMMIT_TIMEOUT_SECONDS)
        except Exception as exc:
            raise ScanNotRecorded() from exc

    def submit(self, row: dict[str, Any]) -> "Future[None]":
        """Queue ``row``; the future is done once it is committed. An async caller awaits it
        without a thread (the campaign redirect); ``write`` waits for it."""
        done: Future[None] = Future()
        self._queue.put((row, done))
        return done

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=COMMIT_TIMEOUT_SECONDS)

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            self._commit(batch)

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

    def _commit(self, batch: list[_Pending]) -> None:
        try:
            self._insert([row for row, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                log.exception("could not commit a scan event")
                batch[0][1].set_exception(exc)
                return
            # One bad row must not fail its neighbours: try each on its own.
            for item in batch:
                self._commit([item])
            return
        for _, done in batch:
            done.set_result(None)

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        with self._engine.begin() as connection:
            insert_scans(connection, rows)
