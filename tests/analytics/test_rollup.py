"""The daily rollup the scan feed keeps, range by range, against a recount of the events.

The same statement rolls up on both databases (app.analytics.rollup); the feed runs after the
writer's commits, and ``rebuild`` recounts with it."""

import asyncio
import threading
import time as time_module
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text
from sqlmodel import Session

from app.analytics import scanfeed
from app.analytics.models import CampaignDayTotal
from app.config import Settings
from app.main import create_app
from app.tracking.partitions import Month, add_month, drop_month
from app.tracking.scanlog import ScanWriter
from app.tracking.scanrows import insert_scans
from tests.aio import run_async
from tests.conftest import TEST_DATABASE_URL
from tests.factories import make_campaign, make_creative, make_offer, make_placement
from tests.plans import assert_reads_at_most, captured
from tests.scanlogs import ScanOrigin


def _row(at: datetime, visitor: str | None, *, bot: bool = False, **dims: Any) -> dict[str, Any]:
    return {
        "occurred_at": at,
        "code_form": "campaign",
        "channel": "qr",
        "device_class": "bot" if bot else "mobile",
        "os_family": "",
        "browser_family": "",
        "referrer_host": "",
        "is_bot": bot,
        "visitor_hash": visitor,
        **dims,
    }


def _record(scan_log: ScanWriter, rows: list[dict[str, Any]], settings: Settings) -> None:
    """The rows as concurrent views hand them over (one batch of the event loop's writer),
    then the feed's round after their commit."""

    async def views() -> None:
        await asyncio.gather(*(scan_log.record(row) for row in rows))

    run_async(views)
    scanfeed.catch_up(scan_log._engine, settings.zone)


def _totals(engine: Engine) -> list[tuple[Any, ...]]:
    with Session(engine) as session:
        rows = session.scalars(select(CampaignDayTotal))
        return sorted(
            (r.day, r.campaign_id, r.placement_id, r.creative_id, r.channel, r.device_class)
            + (r.scans, r.visitors)
            for r in rows
        )


@pytest.mark.concurrency
def test_batches_of_scans_are_rolled_up_as_a_recount_would(
    committed: Engine, settings: Settings
) -> None:
    with Session(committed, expire_on_commit=False) as session:
        campaign = make_campaign(session, name="Rolled up")
        assert campaign.id is not None
        placement = make_placement(session, campaign.id, name="Table tent").id
        creative = make_creative(session, campaign.id, name="Red").id
        offer = make_offer(session, settings, issued=True).id
    tent: ScanOrigin = {
        "campaign_id": campaign.id,
        "placement_id": placement,
        "creative_id": creative,
    }
    zone = settings.zone
    day = datetime.now(zone).date() - timedelta(days=2)
    noon = datetime.combine(day, time(12), zone).astimezone(UTC)
    # Half past midnight local time: the next local day, whatever day it is in UTC.
    after_midnight = datetime.combine(day + timedelta(days=1), time(0, 30), zone).astimezone(UTC)
    scan_log = ScanWriter(committed)
    try:
        _record(scan_log, [_row(noon, "seen-before", **tent)], settings)
        _record(
            scan_log,
            [
                _row(noon, "a", **tent),
                _row(noon + timedelta(minutes=1), "a", **tent),  # the same visitor again
                _row(noon, "seen-before", **tent),  # counted in the first batch
                _row(noon, None, **tent),  # Do Not Track: a scan, no visitor
                _row(noon, "crawler", bot=True, **tent),  # left out of every count
                _row(noon, "b", offer_id=offer),  # no campaign: key 0, 0, 0
                _row(after_midnight, "c", **tent),
                _row(after_midnight, "c", **tent, channel="pdf"),
            ],
            settings,
        )
    finally:
        scan_log.close()

    campaign_key = (campaign.id, placement, creative)
    expected = [
        (day, 0, 0, 0, "qr", "mobile", 1, 1),
        (day, *campaign_key, "qr", "mobile", 5, 2),
        (day + timedelta(days=1), *campaign_key, "pdf", "mobile", 1, 0),
        (day + timedelta(days=1), *campaign_key, "qr", "mobile", 1, 1),
    ]
    assert _totals(committed) == sorted(expected)
    scanfeed.rebuild(committed, zone)
    assert _totals(committed) == sorted(expected)


@pytest.mark.concurrency
def test_two_servers_feeds_derive_each_scan_once(committed: Engine, settings: Settings) -> None:
    """Two feeds (two servers) run while scans keep coming: the mark's lock lets one of them
    do each round, so no scan is counted twice or left out."""
    with Session(committed, expire_on_commit=False) as session:
        campaign = make_campaign(session, name="Twice?")
    assert campaign.id is not None
    noon = datetime.combine(datetime.now(settings.zone).date(), time(12), settings.zone)
    stop = threading.Event()

    def feed() -> None:
        while not stop.is_set():
            scanfeed.catch_up(committed, settings.zone, wait=False)

    feeds = [threading.Thread(target=feed) for _ in range(2)]
    for thread in feeds:
        thread.start()
    try:
        for chunk in range(6):
            with committed.begin() as connection:
                rows = [
                    _row(noon.astimezone(UTC), f"v{chunk}-{n}", campaign_id=campaign.id)
                    for n in range(50)
                ]
                insert_scans(connection, rows)
    finally:
        stop.set()
        for thread in feeds:
            thread.join()
    scanfeed.catch_up(committed, settings.zone)
    totals = [row for row in _totals(committed) if row[1] == campaign.id]
    assert [(scans, visitors) for *_, scans, visitors in totals] == [(300, 300)]


@pytest.mark.skipif(not TEST_DATABASE_URL.startswith("postgresql"), reason="PostgreSQL's planner")
def test_a_feed_round_reads_its_new_scans_not_the_whole_table(
    committed: Engine, settings: Settings
) -> None:
    """A round derives the few scans that came since the last one; what it reads must not
    grow with the table (every 0.2 s, on every server). A month's partition is new and has no
    statistics yet at its start: PostgreSQL read the whole of it at each round then, when a
    statement named its range from one end only or joined a subquery's ids back to the table."""
    month = Month(2031, 1)
    with committed.begin() as connection:
        add_month(connection, month)
        # No statistics, as at a month's start, for the whole test.
        connection.execute(text(f"ALTER TABLE {month.name} SET (autovacuum_enabled = off)"))
    try:
        with Session(committed, expire_on_commit=False) as session:
            offer = make_offer(session, settings, issued=True)
        at = datetime(2031, 1, 15, 12, tzinfo=UTC)
        with committed.begin() as connection:
            insert_scans(connection, [_row(at, f"v{n}", offer_id=offer.id) for n in range(20_000)])
        scanfeed.catch_up(committed, settings.zone)
        with committed.begin() as connection:
            insert_scans(connection, [_row(at, f"new{n}", offer_id=offer.id) for n in range(50)])

        with captured(committed) as statements:
            assert scanfeed.catch_up(committed, settings.zone) == 50
        with committed.connect() as connection:
            # 20,050 when a statement reads the partition.
            assert_reads_at_most(connection, statements, "scan_event", 1_000)
    finally:
        with committed.begin() as connection:
            connection.execute(text(f"DELETE FROM {month.name}"))
            drop_month(connection, month)


def _mark(engine: Engine) -> int | None:
    with engine.connect() as connection:
        found = connection.execute(text("SELECT last_scan_id FROM scan_feed_mark")).scalar()
        return None if found is None else int(found)


@pytest.mark.parametrize("feed", [True, False])
def test_a_server_derives_committed_scans_unless_its_feed_is_off(
    committed: Engine, settings: Settings, feed: bool
) -> None:
    """OFFERTRACK_SCAN_FEED: on, the server's own feed rolls up a committed scan within a
    second or so; off (a node that only serves pages), it leaves it for another server."""
    with Session(committed, expire_on_commit=False) as session:
        campaign = make_campaign(session, name="Fed?")
    at = datetime.now(UTC)
    with committed.begin() as connection:
        insert_scans(connection, [_row(at, "v1", campaign_id=campaign.id)])
    app = create_app(settings.model_copy(update={"scan_feed": feed, "webhook_worker": False}))
    with TestClient(app):
        deadline = time_module.monotonic() + (10 if feed else 1.5)  # off: seven rounds' time
        while not _totals(committed) and time_module.monotonic() < deadline:
            time_module.sleep(0.1)
    assert bool(_totals(committed)) is feed
    assert (_mark(committed) is not None) is feed
