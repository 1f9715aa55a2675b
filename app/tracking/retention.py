"""Retention: scan events older than ``scan_retention_days`` become daily counts.

A scan event holds no IP address or user agent, but its visitor hash, time and device details
are still about one visit; after the retention period only counts per day remain
(ScanDaily). ``purge_old_scans`` does one UTC day per transaction: it counts the day's events
into ScanDaily and deletes them, so a run that stops half-way leaves whole days done and the
rest untouched, and running it again only picks up what is left.

On PostgreSQL, where scan_event has a partition per UTC month (app.tracking.partitions), a month
wholly past the cutoff is rolled up day by day and then dropped as a whole, in one transaction:
no row is deleted, and nothing is left for VACUUM. The month the cutoff falls in loses its
expired days row by row as above, so that no event outlives the retention period by up to a
month; its partition goes once all of it has expired. When the partition cannot be locked in
time (a long report reading scan_event), the month's rows go day by day too, and the emptied
partition is dropped on a later run.

Several runs at once (every ``serve`` worker's housekeeping, a cron'd ``offertrack purge``)
take turns: PostgreSQL through a transaction-level advisory lock, SQLite through its single
writer. New scans are never touched: they are younger than any day being rolled up.
"""

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Select, and_, delete, func, select, text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col

from app.db import read_only, utcnow
from app.tracking import partitions
from app.tracking.models import ScanDaily, ScanEvent
from app.tracking.partitions import Month

log = logging.getLogger(__name__)

# Any constant, as long as nothing else in the database uses it as an advisory lock key.
ADVISORY_LOCK_KEY = 0x0FF3_7124_5CA1_0001
# The columns a day's events are grouped by; campaign analytics adds its ids here (and to
# ScanEvent) once scans carry them.
GROUP_COLUMNS = (
    "offer_id",
    "code_form",
    "channel",
    "device_class",
    "is_bot",
    "campaign_id",
    "placement_id",
    "creative_id",
)


@dataclass(frozen=True)
class PurgeReport:
    days: int = 0
    events: int = 0
    rows: int = 0
    months_dropped: int = 0

    def __add__(self, other: "PurgeReport") -> "PurgeReport":
        return PurgeReport(
            self.days + other.days,
            self.events + other.events,
            self.rows + other.rows,
            self.months_dropped + other.months_dropped,
        )


@dataclass(frozen=True)
class DayCount:
    day: date
    scans: int
    unique_visitors: int


def retention_cutoff(retention_days: int, now: datetime | None = None) -> datetime:
    """Events before this instant (a UTC midnight) are rolled up."""
    today = (now or utcnow()).astimezone(UTC).date()
    return _midnight(today - timedelta(days=retention_days))


def purge_old_scans(
    session: Session, *, retention_days: int, now: datetime | None = None
) -> PurgeReport:
    """Roll scan events older than the retention period up into daily counts and delete them."""
    cutoff = retention_cutoff(retention_days, now)
    report = _drop_expired_months(session, cutoff)
    day = _first_day_before(session, cutoff, after=None)
    while day is not None:
        events, rows = _roll_up_day(session, day)
        report += PurgeReport(1, events, rows)
        day = _first_day_before(session, cutoff, after=day)
    return report


def _drop_expired_months(session: Session, cutoff: datetime) -> PurgeReport:
    """PostgreSQL: roll up and drop each month partition that lies wholly before ``cutoff``."""
    with read_only(session):
        connection = session.connection()
        partitioned = partitions.is_partitioned(connection)
        months = partitions.month_partitions(connection) if partitioned else []
    report = PurgeReport()
    for month in (month for month in months if month.end <= cutoff):
        try:
            report += _roll_up_month(session, month)
        except OperationalError as exc:  # locked past the timeout: its rows go day by day
            session.rollback()
            log.warning("scan partition %s not dropped this time: %s", month.name, exc)
            break
    return report


def _roll_up_month(session: Session, month: Month) -> PurgeReport:
    """One month in one transaction: count each of its days into ScanDaily, then drop it."""
    _take_turns(session)
    connection = session.connection()
    if month not in partitions.month_partitions(connection):
        session.commit()  # another purge dropped it while this one waited its turn
        return PurgeReport()
    partitions.freeze_month(connection, month)
    report = PurgeReport(months_dropped=1)
    day = _first_day_in(session, month.start, month.end)
    while day is not None:
        groups = _day_groups(session, _within(day))
        for key, counts in groups.items():
            _add_counts(session, day, key, counts)
        events = sum(counts["scans"] for counts in groups.values())
        report += PurgeReport(1, events, len(groups))
        day = _first_day_in(session, _midnight(day + timedelta(days=1)), month.end)
    partitions.drop_month(connection, month)
    session.commit()
    return report


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _first_day_before(session: Session, cutoff: datetime, after: date | None) -> date | None:
    """The oldest day with events before ``cutoff`` (and after ``after``): gaps are skipped."""
    query = select(func.min(ScanEvent.occurred_at)).where(col(ScanEvent.occurred_at) < cutoff)
    if after is not None:
        query = query.where(col(ScanEvent.occurred_at) >= _midnight(after + timedelta(days=1)))
    with read_only(session):
        oldest = session.execute(query).scalar_one_or_none()
    return oldest.astimezone(UTC).date() if oldest is not None else None


def _first_day_in(session: Session, start: datetime, end: datetime) -> date | None:
    """The oldest day with events in [start, end), read in the caller's transaction."""
    oldest = session.execute(
        select(func.min(ScanEvent.occurred_at)).where(
            col(ScanEvent.occurred_at) >= start, col(ScanEvent.occurred_at) < end
        )
    ).scalar_one_or_none()
    return oldest.astimezone(UTC).date() if oldest is not None else None


def _within(day: date) -> ColumnElement[bool]:
    return and_(
        col(ScanEvent.occurred_at) >= _midnight(day),
        col(ScanEvent.occurred_at) < _midnight(day + timedelta(days=1)),
    )


def _roll_up_day(session: Session, day: date) -> tuple[int, int]:
    """One day in one transaction: count its events into ScanDaily, then delete them."""
    _take_turns(session)
    in_day = _within(day)
    groups = _day_groups(session, in_day)
    for key, counts in groups.items():
        _add_counts(session, day, key, counts)
    result = cast(CursorResult[Any], session.execute(delete(ScanEvent).where(in_day)))
    deleted = result.rowcount
    session.commit()
    return deleted, len(groups)


def _take_turns(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        # Waiting for the other run's turn to end is the point: no lock timeout here.
        session.execute(text("SET LOCAL lock_timeout = 0"))
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
    # SQLite: the first statement of a write transaction takes the database's one write lock.


_Key = tuple[object, ...]


def _day_groups(session: Session, in_day: ColumnElement[bool]) -> dict[_Key, Counter[str]]:
    columns = [getattr(ScanEvent, name) for name in GROUP_COLUMNS]
    rows = session.execute(
        select(col(ScanEvent.id), col(ScanEvent.visitor_hash), *columns)
        .where(in_day)
        .order_by(col(ScanEvent.id))
    )
    groups: dict[_Key, Counter[str]] = {}
    seen_visitors: set[str] = set()
    for _id, visitor, *key_values in rows:
        visitor = cast(str | None, visitor)
        counts = groups.setdefault(tuple(key_values), Counter())
        counts["scans"] += 1
        if visitor is None:
            counts["untracked_scans"] += 1
        elif visitor not in seen_visitors:  # counted in the group of the first visit
            seen_visitors.add(visitor)
            counts["unique_visitors"] += 1
    return groups


def _add_counts(session: Session, day: date, key: _Key, counts: Counter[str]) -> None:
    """Insert the group's row, or add to it when the day was rolled up before (late events)."""
    values: dict[str, Any] = dict(zip(GROUP_COLUMNS, key, strict=True))
    match = [
        col(getattr(ScanDaily, name)).is_(None)
        if value is None
        else getattr(ScanDaily, name) == value
        for name, value in values.items()
    ]
    existing = session.execute(
        select(ScanDaily).where(col(ScanDaily.day) == day, *match).limit(1)
    ).scalar_one_or_none()
    if existing is None:
        session.add(ScanDaily(day=day, **values, **cast(dict[str, Any], dict(counts))))
        session.flush()
        return
    existing.scans += counts["scans"]
    existing.unique_visitors += counts["unique_visitors"]
    existing.untracked_scans += counts["untracked_scans"]
    session.add(existing)
    session.flush()


def daily_scan_counts(session: Session, offer_id: str, start: date, end: date) -> list[DayCount]:
    """Scans and unique visitors of an offer per UTC day from ``start`` to ``end`` inclusive,
    from the daily counts before the retention boundary and the events after it alike."""
    with read_only(session):
        totals = _rolled_up_counts(session, offer_id, start, end)
        for day, (scans, visitors) in _live_counts(session, offer_id, start, end).items():
            before = totals.get(day, (0, 0))
            totals[day] = (before[0] + scans, before[1] + visitors)
    return [DayCount(day, *totals[day]) for day in sorted(totals)]


def _rolled_up_counts(
    session: Session, offer_id: str, start: date, end: date
) -> dict[date, tuple[int, int]]:
    rows = session.execute(
        select(
            col(ScanDaily.day),
            func.sum(col(ScanDaily.scans)),
            func.sum(col(ScanDaily.unique_visitors)),
        )
        .where(col(ScanDaily.offer_id) == offer_id, col(ScanDaily.day).between(start, end))
        .group_by(col(ScanDaily.day))
    )
    totals: dict[date, tuple[int, int]] = {}
    for row in rows:
        day, scans, visitors = cast(tuple[date, int, int], tuple(row))
        totals[day] = (int(scans), int(visitors))
    return totals


def _live_counts(
    session: Session, offer_id: str, start: date, end: date
) -> dict[date, tuple[int, int]]:
    # Grouped here rather than in SQL: "the UTC day of a timestamp" is spelled differently on
    # each database (and PostgreSQL's date() follows the session's time zone).
    rows = session.execute(live_scans_query(offer_id, start, end))
    scans: Counter[date] = Counter()
    visitors: dict[date, set[str]] = {}
    for row in rows:
        occurred_at, visitor = cast(tuple[datetime, str | None], tuple(row))
        day = occurred_at.astimezone(UTC).date()
        scans[day] += 1
        if visitor is not None:
            visitors.setdefault(day, set()).add(visitor)
    return {day: (count, len(visitors.get(day, ()))) for day, count in scans.items()}


def live_scans_query(offer_id: str, start: date, end: date) -> Select[datetime, str | None]:
    """An offer's scan events of the UTC days ``start`` to ``end``: a range on occurred_at, so
    that PostgreSQL reads only the partitions of those months."""
    return select(col(ScanEvent.occurred_at), col(ScanEvent.visitor_hash)).where(
        col(ScanEvent.offer_id) == offer_id,
        col(ScanEvent.occurred_at) >= _midnight(start),
        col(ScanEvent.occurred_at) < _midnight(end + timedelta(days=1)),
    )
