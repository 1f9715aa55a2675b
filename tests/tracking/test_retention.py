"""Scan events past the retention period become daily counts; reports do not notice."""

import threading
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, insert
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from app.analytics import attribution, rollup, scanfeed
from app.analytics.attribution import Period
from app.cli import cli
from app.config import Settings, get_settings
from app.tracking.models import Channel, ScanDaily, ScanEvent
from app.tracking.retention import (
    DayCount,
    PurgeReport,
    daily_scan_counts,
    purge_old_scans,
    retention_cutoff,
)
from tests.factories import make_offer

NOW = datetime(2027, 3, 10, 14, 30, tzinfo=UTC)
RETENTION = 400
CUTOFF = retention_cutoff(RETENTION, NOW)  # 2026-02-03 00:00 UTC


def scan(offer_id: str, at: datetime, visitor: str | None = "a", **extra: Any) -> dict[str, Any]:
    return {
        "offer_id": offer_id,
        "occurred_at": at,
        "code_form": "full",
        "channel": "qr",
        "device_class": "mobile",
        "os_family": "Android",
        "browser_family": "Chrome",
        "referrer_host": "",
        "is_bot": False,
        "visitor_hash": None if visitor is None else visitor.ljust(64, "0"),
        **extra,
    }


def add_scans(session: Session, rows: list[dict[str, Any]]) -> None:
    session.execute(insert(ScanEvent), rows)
    session.commit()


def count(session: Session, model: type) -> int:
    return session.exec(select(func.count()).select_from(model)).one()


def daily_rows(session: Session) -> list[ScanDaily]:
    return list(
        session.exec(select(ScanDaily).order_by(col(ScanDaily.day), col(ScanDaily.channel))).all()
    )


def test_the_cutoff_is_a_utc_midnight_retention_days_ago() -> None:
    assert CUTOFF == datetime(2026, 2, 3, tzinfo=UTC)


def test_old_events_become_daily_counts_and_are_deleted(session: Session) -> None:
    offer = make_offer(session, get_settings(), issued=True)
    day = CUTOFF - timedelta(days=3)
    add_scans(
        session,
        [
            scan(offer.id, day + timedelta(hours=8), visitor="a"),
            scan(offer.id, day + timedelta(hours=9), visitor="a"),  # same visitor again
            scan(offer.id, day + timedelta(hours=10), visitor="b", channel="pdf"),
            scan(offer.id, day + timedelta(hours=11), visitor="a", channel="pdf"),
            scan(offer.id, day + timedelta(hours=12), visitor=None),  # Do Not Track
            scan(offer.id, day + timedelta(hours=13), visitor="c", is_bot=True, device_class="bot"),
            scan(offer.id, CUTOFF + timedelta(hours=1), visitor="d"),  # within retention
        ],
    )

    report = purge_old_scans(session, retention_days=RETENTION, now=NOW)

    assert report == PurgeReport(days=1, events=6, rows=3)
    rows = {(r.channel, r.is_bot): r for r in daily_rows(session)}
    assert {r.day for r in rows.values()} == {day.date()}
    assert (rows[Channel.QR, False].scans, rows[Channel.QR, False].unique_visitors) == (3, 1)
    assert rows[Channel.QR, False].untracked_scans == 1
    # "a" was counted where it came first (qr), so the rows add up to the day's 3 visitors.
    assert (rows[Channel.PDF, False].scans, rows[Channel.PDF, False].unique_visitors) == (2, 1)
    assert (rows[Channel.QR, True].device_class, rows[Channel.QR, True].unique_visitors) == (
        "bot",
        1,
    )
    assert all(r.campaign_id is None and r.offer_id == offer.id for r in rows.values())
    remaining = session.exec(select(ScanEvent.occurred_at)).all()
    assert remaining == [CUTOFF + timedelta(hours=1)]


def test_a_day_ends_at_utc_midnight(session: Session) -> None:
    offer = make_offer(session, get_settings(), issued=True)
    add_scans(
        session,
        [
            scan(offer.id, CUTOFF - timedelta(microseconds=1)),
            scan(offer.id, CUTOFF),
        ],
    )

    report = purge_old_scans(session, retention_days=RETENTION, now=NOW)

    assert report.events == 1
    assert [r.day for r in daily_rows(session)] == [(CUTOFF - timedelta(days=1)).date()]
    assert count(session, ScanEvent) == 1


def test_running_it_again_changes_nothing(session: Session) -> None:
    offer = make_offer(session, get_settings(), issued=True)
    add_scans(session, [scan(offer.id, CUTOFF - timedelta(days=d)) for d in (1, 2, 30, 300)])

    first = purge_old_scans(session, retention_days=RETENTION, now=NOW)
    rows = [(r.day, r.scans) for r in daily_rows(session)]
    second = purge_old_scans(session, retention_days=RETENTION, now=NOW)

    assert first == PurgeReport(days=4, events=4, rows=4)
    assert second == PurgeReport()
    assert [(r.day, r.scans) for r in daily_rows(session)] == rows


def test_late_events_of_a_rolled_up_day_are_added_to_its_row(session: Session) -> None:
    offer = make_offer(session, get_settings(), issued=True)
    day = CUTOFF - timedelta(days=5)
    add_scans(session, [scan(offer.id, day, visitor="a")])
    purge_old_scans(session, retention_days=RETENTION, now=NOW)

    add_scans(session, [scan(offer.id, day + timedelta(hours=1), visitor="b")])  # e.g. replayed
    purge_old_scans(session, retention_days=RETENTION, now=NOW)

    (row,) = daily_rows(session)
    assert (row.scans, row.unique_visitors) == (2, 2)


def test_daily_counts_read_the_same_across_the_retention_boundary(session: Session) -> None:
    offer = make_offer(session, get_settings(), issued=True)
    other = make_offer(session, get_settings(), issued=True)
    start = CUTOFF - timedelta(days=3)
    add_scans(
        session,
        [
            scan(offer.id, start + timedelta(days=d, hours=h), visitor=v)
            for d in range(6)
            for h, v in ((1, "a"), (2, "b"), (3, "a"), (4, None))
        ]
        + [scan(other.id, start + timedelta(hours=5), visitor="z")],
    )
    days = (start.date(), (start + timedelta(days=5)).date())

    before = daily_scan_counts(session, offer.id, *days)
    purge_old_scans(session, retention_days=RETENTION, now=NOW)
    after = daily_scan_counts(session, offer.id, *days)

    assert count(session, ScanEvent) == 12  # three days rolled up (and "other"), three kept
    assert after == before
    assert before == [DayCount(start.date() + timedelta(days=d), 4, 2) for d in range(6)]


@pytest.mark.concurrency
def test_concurrent_purges_and_scans_lose_and_double_nothing(committed: Engine) -> None:
    with Session(committed, expire_on_commit=False) as session:
        offer = make_offer(session, get_settings(), issued=True)
        old = [
            scan(offer.id, CUTOFF - timedelta(days=d) + timedelta(hours=m))
            for d in range(1, 21)
            for m in range(10)
        ]
        add_scans(session, old)
    stop = threading.Event()
    written: list[int] = []
    errors: list[BaseException] = []

    def write_new_scans() -> None:
        with Session(committed) as session:
            while not stop.is_set():
                add_scans(session, [scan(offer.id, NOW, visitor=f"n{len(written)}")])
                written.append(1)

    def purge() -> None:
        try:
            with Session(committed, expire_on_commit=False) as session:
                purge_old_scans(session, retention_days=RETENTION, now=NOW)
        except BaseException as exc:
            errors.append(exc)

    writer = threading.Thread(target=write_new_scans)
    purgers = [threading.Thread(target=purge) for _ in range(3)]
    writer.start()
    for thread in purgers:
        thread.start()
    for thread in purgers:
        thread.join(timeout=120)
    stop.set()
    writer.join(timeout=30)

    assert errors == []
    with Session(committed) as session:
        rows = daily_rows(session)
        assert sum(r.scans for r in rows) == len(old)
        assert len(rows) == 20  # one per day: no day rolled up twice
        assert count(session, ScanEvent) == len(written) > 0


@pytest.mark.concurrency
def test_offertrack_purge_reports_what_it_did(committed: Engine) -> None:
    with Session(committed, expire_on_commit=False) as session:
        offer = make_offer(session, get_settings(), issued=True)
        long_ago = datetime.now(UTC) - timedelta(days=get_settings().scan_retention_days + 2)
        add_scans(session, [scan(offer.id, long_ago), scan(offer.id, datetime.now(UTC))])

    result = CliRunner().invoke(cli, ["purge"])

    assert result.exit_code == 0, result.output
    assert "1 rolled up into 1 daily rows over 1 days" in result.output
    with Session(committed) as session:
        assert count(session, ScanEvent) == 1
        assert daily_rows(session)[0].day == long_ago.date()


def add_rolled_up_scans(session: Session, rows: list[dict[str, Any]]) -> None:
    """Scans as the scan writer stores them, and the dashboard's rollup the feed derives."""
    connection = session.connection()
    for row in rows:
        scan_id = connection.execute(insert(ScanEvent).values(**row).returning(col(ScanEvent.id)))
        scan_id.scalar_one()
    scanfeed.derive(session, get_settings().zone)  # what the server's scan feed does
    session.commit()


def campaign_dashboard(
    engine: Engine, period: Period
) -> tuple[attribution.Funnel, list[attribution.DayRow]]:
    with Session(engine) as session:
        return attribution.funnel(session, period), attribution.scans_per_day(session, period)


@pytest.mark.concurrency
def test_the_campaign_dashboard_reads_the_same_after_a_purge_and_a_rebuild(
    committed: Engine, settings: Settings
) -> None:
    start = CUTOFF - timedelta(days=4)
    with Session(committed, expire_on_commit=False) as session:
        recent = make_offer(session, settings, issued=True)
        purged_only = make_offer(session, settings, issued=True)  # all its scans are old
        never = make_offer(session, settings, issued=True)
        for offer in (recent, purged_only, never):
            offer.issued_at = start - timedelta(days=1)
            session.add(offer)
        session.commit()
        add_rolled_up_scans(
            session,
            [
                scan(recent.id, start + timedelta(days=d, hours=h), visitor=f"{v}{d}")
                for d in range(8)
                for h, v in ((9, "a"), (10, "b"), (11, "a"))
            ]
            + [scan(purged_only.id, start + timedelta(hours=12), visitor="z")]
            + [scan(never.id, start, visitor="bot", is_bot=True, device_class="bot")],
        )
    period = Period(
        start.date() - timedelta(days=1), start.date() + timedelta(days=8), settings.zone
    )
    before = campaign_dashboard(committed, period)

    with Session(committed, expire_on_commit=False) as session:
        assert purge_old_scans(session, retention_days=RETENTION, now=NOW).events == 14
    after_purge = campaign_dashboard(committed, period)
    scanfeed.rebuild(committed, settings.zone)
    after_rebuild = campaign_dashboard(committed, period)

    assert before[0] == attribution.Funnel(issued=3, scanned=2, accepted=0, ordered=0)
    assert sum(day.scans for day in before[1]) == 25
    assert after_purge == before
    assert after_rebuild == before


@pytest.mark.parametrize(
    ("zone", "first_recounted"),
    [
        ("UTC", datetime(2026, 2, 3, tzinfo=UTC)),
        ("Europe/Berlin", datetime(2026, 2, 3, 23, tzinfo=UTC)),  # 01:00 local: next midnight
        ("America/New_York", datetime(2026, 2, 3, 5, tzinfo=UTC)),
    ],
)
def test_a_rebuild_recounts_only_local_days_none_of_whose_events_were_purged(
    session: Session, zone: str, first_recounted: datetime
) -> None:
    assert rollup.recount_boundary(session.connection(), ZoneInfo(zone)) is None
    offer = make_offer(session, get_settings(), issued=True)
    add_scans(session, [scan(offer.id, CUTOFF - timedelta(hours=1))])
    purge_old_scans(session, retention_days=RETENTION, now=NOW)

    boundary = rollup.recount_boundary(session.connection(), ZoneInfo(zone))

    assert boundary == first_recounted


@pytest.mark.concurrency
def test_the_server_rolls_old_scans_up_on_its_own(committed: Engine, settings: Settings) -> None:
    from fastapi.testclient import TestClient

    from app.main import create_app

    with Session(committed, expire_on_commit=False) as session:
        offer = make_offer(session, settings, issued=True)
        long_ago = datetime.now(UTC) - timedelta(days=settings.scan_retention_days + 2)
        add_scans(session, [scan(offer.id, long_ago), scan(offer.id, datetime.now(UTC))])

    # The housekeeping step runs as the server starts, then hourly.
    with TestClient(create_app(settings.model_copy(update={"webhook_worker": False}))):
        deadline = time.monotonic() + 20
        with Session(committed) as session:
            while count(session, ScanEvent) > 1:
                assert time.monotonic() < deadline, "serve did not purge the old scan"
                time.sleep(0.05)
                session.rollback()  # a fresh snapshot for the next look

    with Session(committed) as session:
        assert [(r.day, r.scans) for r in daily_rows(session)] == [(long_ago.date(), 1)]
        assert session.exec(select(ScanEvent.offer_id)).all() == [offer.id]


def test_the_default_retention_is_400_days() -> None:
    from app.config import Settings

    assert Settings().scan_retention_days == 400
    assert isinstance(CUTOFF.date(), date)
