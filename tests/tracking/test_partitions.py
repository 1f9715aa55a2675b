"""Scan events by month: PostgreSQL partitions them, SQLite keeps one table; no scan is lost
either way, date ranges read only their months, and retention drops whole expired months."""

import time
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, ScalarResult, text
from sqlmodel import Session, select

from app.config import Settings, get_settings
from app.main import create_app
from app.tracking import partitions
from app.tracking.models import ScanDaily, ScanEvent
from app.tracking.partitions import Month
from app.tracking.retention import (
    daily_scan_counts,
    live_scans_query,
    purge_old_scans,
    retention_cutoff,
)
from app.tracking.scanlog import ScanWriter
from tests.conftest import TEST_DATABASE_URL
from tests.factories import make_offer
from tests.scanlogs import write as write_scan
from tests.tracking.test_retention import add_scans, count, scan

postgresql_only = pytest.mark.skipif(
    TEST_DATABASE_URL.startswith("sqlite"), reason="SQLite keeps scan_event in one table"
)
NOW = datetime(2025, 6, 10, 12, tzinfo=UTC)
RETENTION = 120
CUTOFF = retention_cutoff(RETENTION, NOW)  # 2025-02-10: January has expired, February half


def partition_of(connection: Connection, scan_id: int) -> str:
    query = text("SELECT tableoid::regclass::text FROM scan_event WHERE id = :id")
    return str(connection.execute(query, {"id": scan_id}).scalar_one())


def test_a_month_knows_its_partition_and_bounds() -> None:
    december = Month.of(datetime(2026, 12, 31, 23, 30, tzinfo=UTC))

    assert december.name == "scan_event_p2026_12"
    assert (december.start, december.end) == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert Month.named("scan_event_p2026_12") == december
    assert Month.named("scan_event_daily") is None
    assert partitions.is_partition("scan_event_default")
    assert not partitions.is_partition("scan_event")


def test_on_sqlite_scan_event_stays_one_table(session: Session) -> None:
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        pytest.skip("the SQLite answer")

    assert not partitions.is_partitioned(connection)
    assert partitions.add_coming_months(connection) == []


@pytest.mark.concurrency
def test_a_scan_dated_in_a_month_without_a_partition_is_still_stored(committed: Engine) -> None:
    with Session(committed, expire_on_commit=False) as session:
        offer = make_offer(session, get_settings(), issued=True)
    far_off = datetime(2039, 5, 4, 3, 2, tzinfo=UTC)  # the clock of a misconfigured node
    writer = ScanWriter(committed)  # the batching writer every view goes through
    try:
        with Session(committed) as session:
            write_scan(writer, session, scan(offer.id, far_off))
    finally:
        writer.close()

    with committed.connect() as connection:
        stored = connection.execute(
            select(ScanEvent.id, ScanEvent.occurred_at).where(ScanEvent.offer_id == offer.id)
        ).one()
        assert stored.occurred_at == far_off
        if partitions.is_partitioned(connection):
            assert Month(2039, 5) not in partitions.month_partitions(connection)
            assert partition_of(connection, stored.id) == "scan_event_default"


@postgresql_only
def test_the_coming_months_are_made_and_take_over_their_rows_from_the_default(
    session: Session,
) -> None:
    offer = make_offer(session, get_settings(), issued=True)
    add_scans(session, [scan(offer.id, datetime(2031, 8, 20, tzinfo=UTC))])
    connection = session.connection()
    scan_id = session.exec(select(ScanEvent.id).where(ScanEvent.offer_id == offer.id)).one()
    assert scan_id is not None
    assert partition_of(connection, scan_id) == "scan_event_default"

    made = partitions.add_coming_months(connection, now=datetime(2031, 7, 15, tzinfo=UTC))

    assert made == [Month(2031, 7), Month(2031, 8), Month(2031, 9)]
    assert partition_of(connection, scan_id) == "scan_event_p2031_08"  # same row, same id
    assert partitions.add_coming_months(connection, now=datetime(2031, 7, 15, tzinfo=UTC)) == []


def explain(connection: Connection, query: Any) -> str:
    compiled = query.compile(dialect=connection.dialect)
    plan: ScalarResult[str] = connection.exec_driver_sql(
        f"EXPLAIN {compiled}", compiled.params
    ).scalars()
    return "\n".join(plan)


@postgresql_only
def test_a_date_range_reads_only_the_partitions_of_its_months(session: Session) -> None:
    connection = session.connection()
    for month in (Month(2030, 3), Month(2030, 4), Month(2030, 5)):
        partitions.add_month(connection, month)

    april = explain(connection, live_scans_query("X" * 26, date(2030, 4, 3), date(2030, 4, 20)))
    spring = explain(connection, live_scans_query("X" * 26, date(2030, 3, 30), date(2030, 4, 2)))

    read = {name for name in partitions_named(connection) if name in april}
    assert read == {"scan_event_p2030_04"}
    read = {name for name in partitions_named(connection) if name in spring}
    assert read == {"scan_event_p2030_03", "scan_event_p2030_04"}


def partitions_named(connection: Connection) -> list[str]:
    months = [month.name for month in partitions.month_partitions(connection)]
    return [*months, partitions.DEFAULT_PARTITION]


@postgresql_only
def test_retention_rolls_up_then_drops_a_wholly_expired_month(committed: Engine) -> None:
    # The months' partitions exist before their scans, as the servers make them (committed):
    # a partition made in the purge's own transaction would hold its lock against every
    # server's scan feed, whose reads of scan_event the drop must then wait for.
    with committed.begin() as connection:
        for month in (Month(2025, 1), Month(2025, 2)):
            partitions.add_month(connection, month)
    try:
        with Session(committed, expire_on_commit=False) as session:
            offer = make_offer(session, get_settings(), issued=True)
            january = [
                scan(offer.id, datetime(2025, 1, day, hour, tzinfo=UTC), visitor=f"v{hour % 2}")
                for day in (3, 17, 31)
                for hour in (8, 9, 23)
            ]
            february = [
                scan(offer.id, datetime(2025, 2, day, 10, tzinfo=UTC)) for day in (2, 9, 10, 11)
            ]
            add_scans(session, january + february)
            span = (date(2025, 1, 1), date(2025, 2, 28))
            before = daily_scan_counts(session, offer.id, *span)
            session.commit()

            report = purge_old_scans(session, retention_days=RETENTION, now=NOW)

            assert report.months_dropped == 1
            assert report.events == len(january) + 2  # and February's two days before the cutoff
            months = partitions.month_partitions(session.connection())
            assert Month(2025, 1) not in months
            assert Month(2025, 2) in months  # half expired
            assert daily_scan_counts(session, offer.id, *span) == before
            rolled_up = sum(row.scans for row in session.exec(select(ScanDaily)).all())
            assert rolled_up == len(january) + 2
            assert count(session, ScanEvent) == 2  # the 10th and the 11th of February
            assert purge_old_scans(session, retention_days=RETENTION, now=NOW).events == 0
            session.commit()
    finally:
        with committed.begin() as connection:
            for month in partitions.month_partitions(connection):
                if month in (Month(2025, 1), Month(2025, 2)):
                    partitions.drop_month(connection, month)


@postgresql_only
@pytest.mark.concurrency
def test_the_server_makes_the_coming_months_partitions(
    committed: Engine, settings: Settings
) -> None:
    last = Month.of(datetime.now(UTC)).next().next()
    with committed.begin() as connection:
        partitions.drop_month(connection, last)  # empty: nothing is lost

    # The housekeeping step runs as the server starts, then hourly.
    with TestClient(create_app(settings.model_copy(update={"webhook_worker": False}))):
        deadline = time.monotonic() + 20
        while last not in months_of(committed):
            assert time.monotonic() < deadline, "serve did not make the partition"
            time.sleep(0.05)


def months_of(engine: Engine) -> list[Month]:
    with engine.connect() as connection:
        return partitions.month_partitions(connection)


@postgresql_only
@pytest.mark.concurrency
def test_a_month_locked_by_a_long_read_goes_row_by_row_and_its_partition_later(
    committed: Engine,
) -> None:
    with Session(committed, expire_on_commit=False) as session:
        partitions.add_month(session.connection(), Month(2025, 1))
        offer = make_offer(session, get_settings(), issued=True)
        add_scans(session, [scan(offer.id, datetime(2025, 1, day, tzinfo=UTC)) for day in (5, 6)])
    try:
        with committed.connect() as reader:  # a long report: its transaction holds scan_event
            reader.execute(select(ScanEvent.id)).all()
            with Session(committed, expire_on_commit=False) as session:
                first = purge_old_scans(session, retention_days=RETENTION, now=NOW)
            reader.rollback()
        with Session(committed, expire_on_commit=False) as session:
            second = purge_old_scans(session, retention_days=RETENTION, now=NOW)
            rolled_up = sum(row.scans for row in session.exec(select(ScanDaily)).all())
    finally:
        with committed.begin() as connection:
            if Month(2025, 1) in partitions.month_partitions(connection):
                partitions.drop_month(connection, Month(2025, 1))

    assert (first.months_dropped, first.events) == (0, 2)  # deleted day by day instead
    assert (second.months_dropped, second.events) == (1, 0)  # the empty partition goes
    assert rolled_up == 2  # counted once


@postgresql_only
def test_two_servers_keeping_the_months_ahead_make_each_month_once(committed: Engine) -> None:
    """Every server process keeps the coming months; one that read the partitions before
    another made a month finds it once it has the lock, and neither fails."""
    month = Month(2040, 2)
    try:
        with committed.connect() as late:
            late.execute(text("SELECT 1"))  # read what exists: the month is not there yet
            assert month not in partitions.month_partitions(late)
            with committed.begin() as first:
                assert partitions.add_month(first, month)
            assert not partitions.add_month(late, month)
            late.commit()
        with committed.connect() as connection:
            assert partitions.month_partitions(connection).count(month) == 1
    finally:
        with committed.begin() as connection:
            connection.execute(text(f"DROP TABLE IF EXISTS {month.name}"))
