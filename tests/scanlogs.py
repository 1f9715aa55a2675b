"""Scan logs for tests: the app's writer batches on an event loop; tests also store plainly."""

import asyncio
import threading
from functools import cache
from typing import Any, TypedDict

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from app.tracking.scanlog import ScanWriter
from app.tracking.scanrows import insert_scans


class ScanOrigin(TypedDict):
    """The campaign, placement and creative a scan row names (typed, so that ``**origin``
    cannot be taken for another keyword of a row builder)."""

    campaign_id: int | None
    placement_id: int | None
    creative_id: int | None


class SessionScanLog:
    """Commits each row in a given session, inside a test's own transaction."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def _write(self, row: dict[str, Any]) -> None:
        insert_scans(self._session.connection(), [row])
        self._session.commit()

    async def record(self, row: dict[str, Any], *, hold: bool = False) -> None:
        await run_in_threadpool(self._write, row)


def write(writer: ScanWriter, session: Session, row: dict[str, Any]) -> None:
    """``writer.record`` from a thread: the rows of concurrent threads share one loop's batch."""
    if session.in_transaction():
        # On SQLite an open write transaction holds the one writer's lock, which the writer
        # needs for this very row: end it first.
        session.commit()
    asyncio.run_coroutine_threadsafe(writer.record(row), _threads_loop()).result(timeout=10)


@cache
def _threads_loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="test-scan-loop", daemon=True).start()
    return loop
