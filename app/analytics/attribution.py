"""The dashboard's aggregates: scans, visitors, conversions and revenue over a date range.

Written in SQLAlchemy Core so one query serves SQLite and PostgreSQL. Scans and visitors come
from the daily rollup (app.analytics.rollup), conversions from a range of
``conversion.occurred_at`` through its index. Bots are never counted. A visitor counts once a
day per code or offer; a visitor who sent DNT/GPC counts as a scan but not as a visitor.
"""

from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from statistics import median
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select
from sqlmodel import Session, col

from app.analytics.models import (
    Campaign,
    CampaignDayTotal,
    Conversion,
    Creative,
    Placement,
    table_of,
)
from app.analytics.outbox import SCAN_FIELDS
from app.analytics.stats import Posterior, probability_best
from app.db import read_only
from app.offers.models import Offer
from app.offers.pricing import round_money
from app.tracking.models import ScanDaily, ScanEvent

Dimension = Literal["campaign", "placement", "creative"]
Breakdown = Literal["channel", "device", "campaign", "placement", "creative"]
Model = Literal["first_touch", "last_touch"]
DIMENSION_TABLES: dict[str, Any] = {
    "campaign": Campaign,
    "placement": Placement,
    "creative": Creative,
}
TIME_BUCKETS = (
    ("under 1 hour", 3600),
    ("1 to 24 hours", 86_400),
    ("1 to 7 days", 7 * 86_400),
    ("7 to 30 days", 30 * 86_400),
    ("over 30 days", None),
)

scans = table_of(ScanEvent).c
scan_daily = table_of(ScanDaily).c
daily = table_of(CampaignDayTotal).c
conversions = table_of(Conversion).c
offers = table_of(Offer).c


@dataclass(frozen=True)
class Period:
    """Local dates ``start`` to ``end``, both included, in ``zone``."""

    start: date
    end: date
    zone: ZoneInfo

    @property
    def utc_start(self) -> datetime:
        return datetime.combine(self.start, time(), self.zone).astimezone(UTC)

    @property
    def utc_end(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time(), self.zone).astimezone(UTC)

    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]


@dataclass(frozen=True)
class DayRow:
    day: date
    scans: int
    visitors: int


@dataclass(frozen=True)
class BreakdownRow:
    key: str
    label: str
    scans: int
    visitors: int


@dataclass(frozen=True)
class Funnel:
    issued: int
    scanned: int
    accepted: int
    ordered: int


@dataclass
class AttributionRow:
    id: int | None
    label: str
    scans: int = 0
    visitors: int = 0
    conversions: int = 0
    revenue: dict[str, Decimal] = field(default_factory=dict)
    conversion_rate: float | None = None
    mean_seconds_to_convert: float | None = None
    median_seconds_to_convert: float | None = None
    # None where the row has no unique visitors (conversions credited to no scan): a rate
    # of conversions per visitor, and so its estimate, does not exist there.
    posterior_mean: float | None = None
    interval_low: float | None = None
    interval_high: float | None = None
    probability_best: float | None = None


def _in_range(column: Any, period: Period) -> ColumnElement[bool]:
    return and_(column >= period.utc_start, column < period.utc_end)


def _days(period: Period) -> ColumnElement[bool]:
    return and_(daily.day >= period.start, daily.day <= period.end)


def scans_per_day(
    session: Session, period: Period, placement_id: int | None = None
) -> list[DayRow]:
    """Scans and unique visitors on each local day, days without scans included; of one
    placement's code when ``placement_id`` is given."""
    query = (
        select(daily.day, func.sum(daily.scans), func.sum(daily.visitors))
        .where(_days(period))
        .group_by(daily.day)
    )
    if placement_id is not None:
        query = query.where(daily.placement_id == placement_id)
    with read_only(session):
        result: Sequence[Any] = session.execute(query).all()
    found = {day: (int(n), int(v)) for day, n, v in result}
    return [DayRow(d, *found.get(d, (0, 0))) for d in period.days()]


BREAKDOWN_COLUMNS = {
    "channel": "channel",
    "device": "device_class",
    "campaign": "campaign_id",
    "placement": "placement_id",
    "creative": "creative_id",
}


def scan_breakdown(session: Session, period: Period, by: Breakdown) -> list[BreakdownRow]:
    """Scans and unique visitors by channel, device, campaign, placement or creative."""
    column = daily[BREAKDOWN_COLUMNS[by]]
    scans_sum = func.sum(daily.scans)
    query = (
        select(column, scans_sum, func.sum(daily.visitors))
        .where(_days(period))
        .group_by(column)
        .order_by(scans_sum.desc(), column)
    )
    with read_only(session):
        rows: Sequence[Any] = session.execute(query).all()
        labels = _labels(session, by) if by in DIMENSION_TABLES else {}
    return [
        BreakdownRow(
            str(key) if key else "",
            labels.get(key, str(key)) if key else "(none)",
            int(n),
            int(v),
        )
        for key, n, v in rows
    ]


def _labels(session: Session, dimension: str) -> dict[Any, str]:
    """Each row's name; a creative's or placement's whose name another campaign uses too
    ("Poster A" in two campaigns) followed by its campaign's, so the rows can be told apart."""
    table = DIMENSION_TABLES[dimension]
    if dimension == "campaign":  # campaign names are unique
        return dict(session.execute(select(table.id, table.name)).all())
    found: Sequence[Any] = session.execute(
        select(table.id, table.name, col(Campaign.name)).join(Campaign)
    ).all()
    seen = Counter(name for _, name, _ in found)
    return {
        key: f"{name} ({campaign})" if seen[name] > 1 else name for key, name, campaign in found
    }


def funnel(session: Session, period: Period) -> Funnel:
    """Offers issued in the period, and how many of them were scanned, accepted, ordered."""
    scanned = (
        select(literal(1)).where(scans.offer_id == offers.id, scans.is_bot.is_(False)).exists()
    )
    # Scans past the retention period live on only as daily counts: an offer scanned back
    # then still counts as scanned.
    scanned_before_purge = (
        select(literal(1))
        .where(scan_daily.offer_id == offers.id, scan_daily.is_bot.is_(False))
        .exists()
    )
    query = select(
        func.count(),
        func.sum(case((or_(scanned, scanned_before_purge), 1), else_=0)),
        func.count(offers.accepted_at),
        func.count(offers.ordered_at),
    ).where(_in_range(offers.issued_at, period))
    with read_only(session):
        counts: Any = session.execute(query).one()
        issued, seen, accepted, ordered = counts
    return Funnel(int(issued), int(seen or 0), int(accepted), int(ordered))


def conversions_per_day(
    session: Session, period: Period, placement_id: int, model: Model = "last_touch"
) -> list[int]:
    """Conversions credited to one placement on each local day of the period."""
    column = conversions["first_placement_id" if model == "first_touch" else "last_placement_id"]
    query = select(conversions.occurred_at).where(
        _in_range(conversions.occurred_at, period), column == placement_id
    )
    with read_only(session):
        found: Sequence[datetime] = session.execute(query).scalars().all()
    # A placement's conversions in a month are few: counted here by local day, where SQL
    # would need one expression per database for the day in the configured zone.
    counts = Counter(moment.astimezone(period.zone).date() for moment in found)
    return [counts.get(day, 0) for day in period.days()]


def attribution(
    session: Session, period: Period, by: Dimension, model: Model
) -> list[AttributionRow]:
    """Scans, visitors, conversions, rate, revenue and time to convert per campaign,
    placement or creative; conversions credited to their first or last touch."""
    prefix = "first" if model == "first_touch" else "last"
    with read_only(session):
        labels = _labels(session, by)
        rows = _scan_counts(session, period, by, labels)
        _add_conversions(session, period, conversions[f"{prefix}_{by}_id"], rows, labels)
    result = sorted(rows.values(), key=lambda r: (r.id is None, -r.scans, r.label))
    _add_estimates(result)
    return result


def _row(rows: dict[Any, AttributionRow], key: Any, labels: dict[Any, str]) -> AttributionRow:
    if key not in rows:
        rows[key] = AttributionRow(key, labels.get(key, "(none)" if key is None else str(key)))
    return rows[key]


def _scan_counts(
    session: Session, period: Period, by: str, labels: dict[Any, str]
) -> dict[Any, AttributionRow]:
    column = daily[f"{by}_id"]
    query = (
        select(column, func.sum(daily.scans), func.sum(daily.visitors))
        .where(_days(period), column != 0)
        .group_by(column)
    )
    rows: dict[Any, AttributionRow] = {}
    found: Sequence[Any] = session.execute(query).all()
    for key, n, visitors in found:
        row = _row(rows, key, labels)
        row.scans, row.visitors = int(n), int(visitors)
    return rows


def _add_conversions(
    session: Session,
    period: Period,
    column: Any,
    rows: dict[Any, AttributionRow],
    labels: dict[Any, str],
) -> None:
    in_period = _in_range(conversions.occurred_at, period)
    money = select(column, conversions.currency, func.count(), func.sum(conversions.value))
    sums: Sequence[Any] = session.execute(
        money.where(in_period).group_by(column, conversions.currency)
    ).all()
    for key, currency, n, total in sums:
        row = _row(rows, key, labels)
        row.conversions += n
        row.revenue[currency] = round_money(Decimal(str(total or 0)), currency)
    waits: dict[Any, list[int]] = defaultdict(list)
    timed = select(column, conversions.seconds_to_convert).where(
        in_period, conversions.seconds_to_convert.is_not(None)
    )
    timings: Sequence[Any] = session.execute(timed).all()
    for key, seconds in timings:
        waits[key].append(seconds)
    for key, values in waits.items():
        rows[key].mean_seconds_to_convert = sum(values) / len(values)
        rows[key].median_seconds_to_convert = float(median(values))


def _add_estimates(rows: Sequence[AttributionRow]) -> None:
    """Rate and Bayesian estimate of each row with visitors; P(best) among the named ones."""
    estimated = [row for row in rows if row.visitors]
    for row in estimated:
        row.conversion_rate = row.conversions / row.visitors
        posterior = Posterior.of(row.conversions, row.visitors)
        row.posterior_mean = posterior.mean
        row.interval_low, row.interval_high = posterior.interval()
    ranked = [row for row in estimated if row.id is not None]
    best = probability_best([Posterior.of(row.conversions, row.visitors) for row in ranked])
    for row, p in zip(ranked, best, strict=True):
        row.probability_best = p


def time_to_convert(session: Session, period: Period) -> list[tuple[str, int]]:
    """Conversions by time from their first scan; those without a scan are left out."""
    seconds = conversions.seconds_to_convert
    bucket = case(
        *[(seconds < limit, label) for label, limit in TIME_BUCKETS if limit is not None],
        else_=TIME_BUCKETS[-1][0],
    ).label("bucket")
    query = (
        select(bucket, func.count())
        .where(_in_range(conversions.occurred_at, period), seconds.is_not(None))
        .group_by(bucket)
    )
    with read_only(session):
        found = dict(session.execute(query).all())
    return [(label, int(found.get(label, 0))) for label, _ in TIME_BUCKETS]


EXPORT_COLUMNS = {
    "scans": ("id", "occurred_at", *SCAN_FIELDS),  # what a scan.created webhook carries
    "conversions": tuple(
        c for c in Conversion.model_fields if c not in {"body_hash", "created_at"}
    ),
}


def export_events(
    session: Session, period: Period, kind: Literal["scans", "conversions"]
) -> Iterator[Sequence[Any]]:
    """Every scan event (bots included, flagged) or conversion in the period, oldest first,
    streamed in batches: no visitor hash ever leaves the database."""
    table = scans if kind == "scans" else conversions
    columns = [table[name] for name in EXPORT_COLUMNS[kind]]
    query = (
        select(*columns)
        .where(_in_range(table.occurred_at, period))
        .order_by(table.occurred_at, table.id)
    )
    with read_only(session):
        result = session.execute(query.execution_options(yield_per=2000))
        yield from result
