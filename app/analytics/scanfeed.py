"""What follows from committed scans (rollups, ``scan.created`` webhook events,
``ScansCommitted``), derived once each, after commit, past a high-water mark."""

import logging
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, func, select, text
from sqlmodel import Session

from app import events
from app.analytics import outbox, rollup
from app.analytics.models import ScanFeedMark, table_of
from app.db import READ_ONLY, insert_on_conflict, utcnow
from app.tracking.events import ScansCommitted
from app.tracking.models import ScanEvent

log = logging.getLogger(__name__)
FEED = "analytics"
ROWS_PER_ROUND = 5000
POLL_SECONDS = 0.2
GAP_PATIENCE = timedelta(seconds=10)
_mark = table_of(ScanFeedMark)
_scans = table_of(ScanEvent)


def derive(session: Session, zone: ZoneInfo, *, wait: bool = True) -> int:
    """One round in the session's transaction (the caller commits); returns how many scans
    it derived. Without ``wait``, 0 when another server holds the mark."""
    connection = session.connection()
    mark = _take_mark(connection, wait=wait)
    if mark is None:
        return 0
    after, gap_since = mark
    run = _unbroken_run(connection, after, gap_since)
    if not run:
        return 0
    upto = run[-1]
    rollup.add_range(connection, after, upto, zone)
    outbox.queue_scans(connection, after, upto)
    events.publish(session, ScansCommitted(after=after, upto=upto))  # staff alerts
    connection.execute(
        _mark.update().where(_mark.c.name == FEED).values(last_scan_id=upto, gap_since=None)
    )
    return len(run)


def _unbroken_run(connection: Connection, after: int, gap_since: datetime | None) -> list[int]:
    """The ids this round derives: those past the mark up to the first missing one.

    Every statement of a round names its range from both ends, here and below: with only
    ``id > after``, PostgreSQL read the whole table at each round when it had no statistics for
    it yet (a month's new partition) or when a subquery's ids were joined back to it.
    """
    first = connection.execute(select(func.min(_scans.c.id)).where(_scans.c.id > after)).scalar()
    if first is None:
        return []
    if first != after + 1 and not _gap_is_final(connection, gap_since):
        if gap_since is None:
            connection.execute(
                _mark.update().where(_mark.c.name == FEED).values(gap_since=utcnow())
            )
        return []
    in_reach = (_scans.c.id >= first) & (_scans.c.id < first + ROWS_PER_ROUND)
    query = select(_scans.c.id).where(in_reach).order_by(_scans.c.id)
    ids: Sequence[int] = connection.execute(query).scalars().all()
    run: list[int] = []
    for scan_id in ids:
        if run and scan_id != run[-1] + 1:
            break  # the next round looks at this gap
        run.append(scan_id)
    return run


def _gap_is_final(connection: Connection, gap_since: datetime | None) -> bool:
    """Ids are handed out before commit, so on PostgreSQL a scan with a lower id may still be
    on its way when a higher one is visible: wait until no other transaction is in progress,
    or GAP_PATIENCE has passed (a batch rolled back leaves its ids unused for good, and every
    writer gives up within seconds). SQLite commits in id order, one writer at a time."""
    if connection.dialect.name == "sqlite":
        return True  # we hold the one write lock: no scan is on its way
    if gap_since is not None and utcnow() - gap_since > GAP_PATIENCE:
        return True
    # The snapshot lists the transactions in progress, ours left out.
    others = text("SELECT count(*) FROM pg_snapshot_xip(pg_current_snapshot())")
    return int(connection.execute(others).scalar_one()) == 0


def _take_mark(connection: Connection, *, wait: bool) -> tuple[int, datetime | None] | None:
    """Lock the mark's row, made on first use; None if another server holds it. One server
    at a time does each round: on PostgreSQL another's round skips (it does not wait), on
    SQLite the round's one write transaction serialises them."""
    query = select(_mark.c.last_scan_id, _mark.c.gap_since).where(_mark.c.name == FEED)
    locked = query.with_for_update(skip_locked=not wait)
    found = connection.execute(locked).first()
    if found is not None:
        return int(found[0]), found[1]
    # No mark yet (a database made without the migrations): start before the first scan.
    first = connection.execute(select(func.min(_scans.c.id))).scalar()
    if first is None:
        return None  # no scans: nothing to derive, and no mark to guess
    start = first - 1
    insert = insert_on_conflict(connection.dialect.name, _mark).values(
        name=FEED, last_scan_id=start
    )
    made = connection.execute(insert.on_conflict_do_nothing().returning(_mark.c.name)).first()
    return None if made is None else (start, None)  # (rowcount says -1 on psycopg)


def hold_mark(connection: Connection) -> int:
    """Lock the mark (waiting for a round in progress) until the transaction ends; returns it."""
    mark = _take_mark(connection, wait=True)
    return 0 if mark is None else mark[0]  # None: no scans at all


def rebuild(engine: Engine, zone: ZoneInfo) -> None:
    """Recompute the rollup from the scan events (after a bulk import, or a zone change).

    It counts the scans the feed has passed (the rest it adds as it goes), holding the feed's
    mark meanwhile.
    """
    with engine.begin() as connection:
        rollup.recount(connection, zone, hold_mark(connection))


def catch_up(engine: Engine, zone: ZoneInfo, *, wait: bool = True) -> int:
    """Derive every committed scan not derived yet; returns how many. With ``wait``, a round
    in progress elsewhere is waited for, so that every scan committed before the call is
    derived on return (gaps still on their way aside)."""
    total = 0
    while True:
        with Session(engine) as session:
            if not _anything_new(session):
                return total
            count = derive(session, zone, wait=wait)
            session.commit()
        total += count
        if count < ROWS_PER_ROUND:
            return total


def _anything_new(session: Session) -> bool:
    # A read first: on SQLite the round's transaction takes the one write lock, which the
    # scan writer must not meet every POLL_SECONDS for nothing.
    connection = session.connection(execution_options={READ_ONLY: True})
    newest = connection.execute(select(func.max(_scans.c.id))).scalar() or 0
    mark = connection.execute(select(_mark.c.last_scan_id).where(_mark.c.name == FEED)).scalar()
    session.commit()
    return newest > (mark or 0)


class ScanFeed:
    """Runs ``catch_up`` every POLL_SECONDS in a thread: rollups and webhook events follow a
    scan within a second."""

    def __init__(self, engine: Engine, zone: ZoneInfo) -> None:
        self._engine = engine
        self._zone = zone
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scan-feed", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                catch_up(self._engine, self._zone, wait=False)
            except Exception as exc:  # the database is away: the next round tries again
                log.info("scan feed round failed: %s", exc)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
