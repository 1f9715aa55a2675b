"""Retention: scan events older than ``scan_retention_days`` become daily counts.

A scan event holds no IP address or user agent, but its visitor hash, time and device details
are still about one visit; after the retention period only counts per day remain
(ScanDaily). ``purge_old_scans`` does one UTC day per transaction: it counts the day's events
into ScanDaily and deletes them, so a run that stops half-way leaves whole days done and the
rest untouched, and running it again only picks up what is left.

Several runs at once (every ``serve`` worker's housekeeping, a cron'd ``offertrack purge``)
take turns: PostgreSQL through a transaction-level advisory lock, SQLite through its single
writer. New scans are never touched: they are younger than any day being rolled up.
"""

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, and_, delete, func, select, text
from sqlmodel import Session, col

from app.db import read_only, utcnow
from app.tracking.models import ScanDaily, ScanEvent

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
    report = PurgeReport()
    day = _first_day_before(session, cutoff, after=None)
    while day is not None:
        events, rows = _roll_up_day(session, day)
        report = PurgeReport(report.days + 1, report.events + events, report.rows + rows)
        day = _first_day_before(session, cutoff, after=day)
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


def _roll_up_day(session: Session, day: date) -> tuple[int, int]:
    """One day in one transaction: count its events into ScanDaily, then delete them."""
    _take_turns(session)
    in_day = and_(
        col(ScanEvent.occurred_at) >= _midnight(day),
        col(ScanEvent.occurred_at) < _midnight(day + timedelta(days=1)),
    )
    groups = _day_groups(session, in_day)
    for key, counts in groups.items():
        _add_counts(session, day, key, counts)
    result = cast(CursorResult[Any], session.execute(delete(ScanEvent).where(in_day)))
    deleted = result.rowcount
    session.commit()
    return deleted, len(groups)


def _take_turns(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
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
    rows = session.execute(
        select(col(ScanEvent.occurred_at), col(ScanEvent.visitor_hash)).where(
            col(ScanEvent.offer_id) == offer_id,
            col(ScanEvent.occurred_at) >= _midnight(start),
            col(ScanEvent.occurred_at) < _midnight(end + timedelta(days=1)),
        )
    )
    scans: Counter[date] = Counter()
    visitors: dict[date, set[str]] = {}
    for row in rows:
        occurred_at, visitor = cast(tuple[datetime, str | None], tuple(row))
        day = occurred_at.astimezone(UTC).date()
        scans[day] += 1
        if visitor is not None:
            visitors.setdefault(day, set()).add(visitor)
    return {day: (count, len(visitors.get(day, ()))) for day, count in scans.items()}
