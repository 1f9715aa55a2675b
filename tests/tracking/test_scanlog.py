"""The group-commit writer: a caller returns only once its row is committed."""

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine, func, text
from sqlmodel import Session, select

from app.config import get_settings
from app.db import utcnow
from app.tracking import scanrows
from app.tracking.models import ScanEvent
from app.tracking.scanlog import ScanNotRecorded, ScanWriter
from app.tracking.spool import ScanSpool
from tests.aio import run_async
from tests.factories import make_offer
from tests.scanlogs import write as write_scan


def _row(offer_id: str) -> dict[str, object]:
    return {
        "offer_id": offer_id,
        "occurred_at": utcnow(),
        "code_form": "full",
        "channel": "qr",
        "device_class": "mobile",
        "os_family": "",
        "browser_family": "",
        "referrer_host": "",
        "is_bot": False,
        "visitor_hash": None,
    }


def _issued_offer(engine: Engine) -> str:
    with Session(engine, expire_on_commit=False) as session:
        return make_offer(session, get_settings(), issued=True).id


def _count(engine: Engine, offer_id: str) -> int:
    with Session(engine) as session:
        query = select(func.count()).select_from(ScanEvent).where(ScanEvent.offer_id == offer_id)
        return session.exec(query).one()


@pytest.mark.concurrency
def test_every_write_is_committed_when_it_returns(committed: Engine) -> None:
    offer_id = _issued_offer(committed)
    scan_log = ScanWriter(committed)

    def write(_: int) -> int:
        with Session(committed) as session:
            write_scan(scan_log, session, _row(offer_id))
        return _count(committed, offer_id)  # visible to another connection at once

    try:
        with ThreadPoolExecutor(16) as pool:
            seen = list(pool.map(write, range(400)))
    finally:
        scan_log.close()
    assert min(seen) >= 1
    assert _count(committed, offer_id) == 400


@pytest.mark.concurrency
def test_a_row_of_a_deleted_offer_is_left_out_and_its_neighbours_are_stored(
    committed: Engine,
) -> None:
    offer_id = _issued_offer(committed)
    gone = "01H0WARY2WHGGRF3K72D299T3T"  # deleted while its page was served: no offer row
    scan_log = ScanWriter(committed)

    def write(offer: str) -> str:
        with Session(committed) as session:
            try:
                write_scan(scan_log, session, _row(offer))
            except ScanNotRecorded:
                return "refused"
        return "ok"

    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(write, [offer_id] * 20 + [gone] * 2))
    finally:
        scan_log.close()
    assert results.count("ok") == 22  # its cascade would have deleted the row anyway
    assert _count(committed, offer_id) == 20
    assert _count(committed, gone) == 0


@pytest.mark.concurrency
def test_a_row_the_database_refuses_fails_its_view_and_is_not_spooled(
    committed: Engine, tmp_path: Path
) -> None:
    """A refused row is a bug, not an outage: spooled, it would be refused at every replay."""
    offer_id = _issued_offer(committed)
    spool = ScanSpool(tmp_path)
    scan_log = ScanWriter(committed, spool=spool)
    broken = {**_row(offer_id), "device_class": None}  # NOT NULL
    refused_before = REGISTRY.get_sample_value("offertrack_scans_refused_total") or 0.0

    async def views() -> None:
        with pytest.raises(ScanNotRecorded):
            await scan_log.record(broken)
        await scan_log.record(_row(offer_id))  # the database is not taken to be away

    try:
        run_async(views)
    finally:
        scan_log.close()
    assert _count(committed, offer_id) == 1
    assert spool.size() == 0
    assert scan_log.write_problem() is None
    # Counted where the operator looks, not only logged.
    refused = REGISTRY.get_sample_value("offertrack_scans_refused_total") or 0.0
    assert refused - refused_before == 1


@pytest.mark.concurrency
def test_a_caller_with_an_open_transaction_does_not_deadlock_the_writer(committed: Engine) -> None:
    offer_id = _issued_offer(committed)
    scan_log = ScanWriter(committed)
    try:
        with Session(committed) as session:
            session.exec(select(ScanEvent)).all()  # on SQLite this holds the writers' lock
            write_scan(scan_log, session, _row(offer_id))  # returns only once the writer committed
    finally:
        scan_log.close()
    assert _count(committed, offer_id) == 1


@pytest.mark.concurrency
def test_record_from_the_event_loop_returns_once_committed(committed: Engine) -> None:
    offer_id = _issued_offer(committed)
    scan_log = ScanWriter(committed)

    async def view() -> int:
        await scan_log.record(_row(offer_id))
        return await asyncio.to_thread(_count, committed, offer_id)

    async def many() -> list[int]:
        return await asyncio.gather(*(view() for _ in range(200)))

    try:
        seen = run_async(many)
    finally:
        scan_log.close()
    assert min(seen) >= 1
    assert _count(committed, offer_id) == 200


def _hold_scan_table(engine: Engine, locked: threading.Event, release: threading.Event) -> None:
    """Another writer holds the scan table: SQLite's one write lock, a table lock on
    PostgreSQL (as a long migration or a stuck batch job would)."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("LOCK TABLE scan_event IN EXCLUSIVE MODE"))
        else:
            connection.execute(text("UPDATE offer SET customer_reference = customer_reference"))
        locked.set()
        release.wait(15)


@pytest.mark.concurrency
def test_a_view_s_row_is_committed_from_the_event_loop(committed: Engine) -> None:
    """The writer waits for a lock held a moment (a checkpoint, another writer) itself: it
    once handed such a batch to writer threads, and with none the views timed out."""
    offer_id = _issued_offer(committed)
    scan_log = ScanWriter(committed)  # no spool: a batch not committed would fail its views
    locked, release = threading.Event(), threading.Event()

    async def views() -> None:
        holder = asyncio.create_task(
            asyncio.to_thread(_hold_scan_table, committed, locked, release)
        )
        await asyncio.to_thread(locked.wait, 5)
        asyncio.get_running_loop().call_later(0.3, release.set)
        await asyncio.gather(*(scan_log.record(_row(offer_id)) for _ in range(50)))
        await holder

    try:
        run_async(views)
        assert _count(committed, offer_id) == 50
    finally:
        release.set()
        scan_log.close()


@pytest.mark.concurrency
def test_a_table_locked_for_5_s_holds_no_view_longer_than_a_second(
    committed: Engine, tmp_path: Path
) -> None:
    """Past a second the batch goes to the spool and its views answer; each scan is stored
    once, whether committed or replayed."""
    offer_id = _issued_offer(committed)
    spool = ScanSpool(tmp_path)
    scan_log = ScanWriter(committed, spool=spool)
    locked, release = threading.Event(), threading.Event()

    async def views() -> list[float]:
        holder = asyncio.create_task(
            asyncio.to_thread(_hold_scan_table, committed, locked, release)
        )
        await asyncio.to_thread(locked.wait, 5)
        waits: list[float] = []

        async def view() -> None:
            started = time.monotonic()
            await scan_log.record(_row(offer_id))
            waits.append(time.monotonic() - started)

        until = time.monotonic() + 5
        while time.monotonic() < until:
            await asyncio.gather(*(view() for _ in range(5)))
            await asyncio.sleep(0.05)
        release.set()
        await holder
        return waits

    try:
        waits = run_async(views)
    finally:
        release.set()
        scan_log.close()
    spool.replay(committed)
    print(f"\nviews during a 5 s lock: {len(waits)}, longest wait {max(waits):.2f} s")
    assert max(waits) < 1.5
    assert _count(committed, offer_id) == len(waits)


@pytest.mark.concurrency
def test_a_view_refused_while_the_table_is_locked_leaves_no_scan(committed: Engine) -> None:
    """Without a spool the view answers 503 after a second, and its scan is not stored later
    (a retry would count it twice)."""
    offer_id = _issued_offer(committed)
    scan_log = ScanWriter(committed)
    locked, release = threading.Event(), threading.Event()

    async def view() -> float:
        holder = asyncio.create_task(
            asyncio.to_thread(_hold_scan_table, committed, locked, release)
        )
        await asyncio.to_thread(locked.wait, 5)
        started = time.monotonic()
        with pytest.raises(ScanNotRecorded):
            await scan_log.record(_row(offer_id))
        waited = time.monotonic() - started
        release.set()
        await holder
        return waited

    try:
        waited = run_async(view)
        problem = scan_log.write_problem()  # what /readyz tells the load balancer
        time.sleep(0.5)
    finally:
        release.set()
        scan_log.close()
    assert waited < 1.5
    assert problem is not None and "cannot be committed" in problem
    assert _count(committed, offer_id) == 0


def _loop_writer_backends(engine: Engine) -> set[int]:
    """The loop writers' connections, this test's and any other scan log's in the process."""
    query = text("SELECT pid FROM pg_stat_activity WHERE application_name = :name")
    with engine.connect() as connection:
        return set(connection.execute(query, {"name": scanrows.WRITER_APPLICATION_NAME}).scalars())


def _terminate(engine: Engine, backend: int) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})


@pytest.mark.concurrency
def test_on_postgresql_a_batch_whose_connection_died_is_committed_by_the_threads(
    committed: Engine,
) -> None:
    if committed.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's loop writer")
    offer_id = _issued_offer(committed)
    scan_log = ScanWriter(committed)

    async def views(count: int) -> None:
        await asyncio.gather(*(scan_log.record(_row(offer_id)) for _ in range(count)))

    async def scenario() -> None:  # one event loop, one loop writer throughout
        others = await asyncio.to_thread(_loop_writer_backends, committed)
        await views(10)
        (backend,) = await asyncio.to_thread(_loop_writer_backends, committed) - others
        await asyncio.to_thread(_terminate, committed, backend)
        await views(10)  # the loop writer finds its connection gone
        assert await asyncio.to_thread(_count, committed, offer_id) == 20
        await views(10)  # and connects again for the next batch
        now = await asyncio.to_thread(_loop_writer_backends, committed)
        assert len(now - others - {backend}) == 1  # (the old one may still be on its way out)
        assert await asyncio.to_thread(_count, committed, offer_id) == 30

    try:
        run_async(scenario)
    finally:
        scan_log.close()


@pytest.mark.concurrency
def test_while_another_writer_holds_the_lock_the_loop_keeps_serving(committed: Engine) -> None:
    """The loop writer never waits for SQLite's lock: it hands the batch to the writer
    threads, and the event loop goes on answering meanwhile."""
    if committed.dialect.name != "sqlite":
        pytest.skip("SQLite's one writer lock")
    offer_id = _issued_offer(committed)
    scan_log = ScanWriter(committed)
    locked, release = threading.Event(), threading.Event()

    def hold_the_write_lock() -> None:
        with committed.begin() as connection:  # a write transaction: SQLite's one writer
            connection.execute(text("UPDATE offer SET customer_reference = customer_reference"))
            locked.set()
            release.wait(5)

    async def scenario() -> tuple[float, float]:
        holder = asyncio.create_task(asyncio.to_thread(hold_the_write_lock))
        await asyncio.to_thread(locked.wait, 5)
        recorded = asyncio.create_task(scan_log.record(_row(offer_id)))
        longest_gap, last = 0.0, time.monotonic()
        for _ in range(30):  # 0.3 s of ticks while the row waits for the lock
            await asyncio.sleep(0.01)
            now = time.monotonic()
            longest_gap, last = max(longest_gap, now - last), now
        waited_before = 0.0 if not recorded.done() else 1.0
        release.set()
        await recorded
        await holder
        return longest_gap, waited_before

    try:
        longest_gap, done_too_early = run_async(scenario)
    finally:
        release.set()
        scan_log.close()
    assert done_too_early == 0.0  # it did wait for the lock...
    assert longest_gap < 0.2  # ...but the loop did not
    assert _count(committed, offer_id) == 1


@pytest.mark.concurrency
def test_the_log_the_loop_writer_fills_is_checkpointed_and_does_not_grow(
    committed: Engine, tmp_path: Path
) -> None:
    if committed.dialect.name != "sqlite":
        pytest.skip("SQLite's write-ahead log")
    offer_id = _issued_offer(committed)
    # With a spool, as every server has: a batch that meets the lock for over a second (the
    # app's scan feed deriving a round on a loaded machine) is spooled, not refused.
    scan_log = ScanWriter(committed, spool=ScanSpool(tmp_path))
    wal = Path(f"{committed.url.database}-wal")

    async def views() -> None:
        for _ in range(40):  # one batch each: the log grows with every commit
            await asyncio.gather(*(scan_log.record(_row(offer_id)) for _ in range(10)))

    sizes = []
    try:
        for _ in range(4):
            run_async(views)
            scan_log.checkpoint()
            sizes.append(wal.stat().st_size)
        # As the server's housekeeping does: a writer that just spooled leaves the database
        # alone for a second (RETRY_DATABASE_AFTER_SECONDS) before it replays.
        deadline = time.monotonic() + 15
        while _count(committed, offer_id) < 4 * 40 * 10 and time.monotonic() < deadline:
            scan_log.replay_spool()
            time.sleep(0.2)
    finally:
        scan_log.close()
    # Each round starts the log over; left alone it would hold all four rounds' pages.
    assert sizes[-1] <= sizes[0] * 1.2
    assert _count(committed, offer_id) == 4 * 40 * 10


@pytest.mark.concurrency
def test_a_checkpoint_during_a_long_read_holds_writers_up_for_a_moment_only(
    committed: Engine,
) -> None:
    """A checkpoint that restarts the log waits for readers of older snapshots, and holds
    off writers while it waits: it must give up soon, not when the export is done."""
    if committed.dialect.name != "sqlite":
        pytest.skip("SQLite's write-ahead log")
    offer_id = _issued_offer(committed)
    scan_log = ScanWriter(committed)
    reading, done_reading = threading.Event(), threading.Event()

    def long_read() -> None:  # an export: one read transaction on an old snapshot
        with committed.connect().execution_options(offertrack_read_only=True) as connection:
            with connection.begin():
                connection.execute(text("SELECT count(*) FROM offer")).scalar()
                reading.set()
                done_reading.wait(10)

    try:
        with ThreadPoolExecutor(2) as pool:
            reader = pool.submit(long_read)
            reading.wait(5)
            with Session(committed) as session:
                write_scan(scan_log, session, _row(offer_id))  # the log now has frames to copy
            checkpoint = pool.submit(scan_log.checkpoint)
            time.sleep(0.05)  # the checkpoint is waiting for the reader
            started = time.monotonic()
            with Session(committed) as session:
                write_scan(scan_log, session, _row(offer_id))
            waited = time.monotonic() - started
            done_reading.set()
            checkpoint.result(10)
            reader.result(10)
    finally:
        done_reading.set()
        scan_log.close()
    assert waited < 1.0
    assert _count(committed, offer_id) == 2
