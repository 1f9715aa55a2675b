"""The daily rollup of human scans that the dashboard reads (``campaign_day_total``).

The scan writer calls ``scans_inserted`` in the transaction of the scans (see
app.tracking.scanrows.on_scans_inserted), so the rollup is never behind and never ahead of the
events. Unique visitors: a visitor hash is counted on its first scan (``visitor_seen``
remembers hashes for 48 hours, as long as their keys live). A hash is daily and belongs to one
offer or code, so its campaign, placement, creative and device are fixed; a visitor who comes
back through another channel the same day counts once, under the channel of the first scan.
"""

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, delete, func, select

from app.analytics.models import CampaignDayTotal, VisitorSeen, table_of
from app.config import get_settings
from app.db import bind_processors, driver_sql, utcnow
from app.tracking.models import ScanDaily, ScanEvent
from app.tracking.scanrows import ScanHook

KEY_COLUMNS = ("day", "campaign_id", "placement_id", "creative_id", "channel", "device_class")
SEEN_FOR = timedelta(hours=48)
_daily = table_of(CampaignDayTotal)
_seen = table_of(VisitorSeen)
_scans = table_of(ScanEvent).c
_scan_daily = table_of(ScanDaily).c
# What key_of reads (the day comes from occurred_at), and what telling visitors apart needs.
_REBUILD_COLUMNS = [
    _scans[name] for name in ("id", "occurred_at", "is_bot", "visitor_hash", *KEY_COLUMNS[1:])
]

Key = tuple[date, int, int, int, str, str]


def key_of(row: dict[str, Any], zone: ZoneInfo) -> Key:
    occurred: datetime = row["occurred_at"]
    return (
        occurred.astimezone(zone).date(),
        row.get("campaign_id") or 0,
        row.get("placement_id") or 0,
        row.get("creative_id") or 0,
        str(row["channel"]),
        str(row["device_class"]),
    )


def first_sightings(connection: Connection, hashes: set[str]) -> set[str]:
    """Which of these hashes were never seen before; they are remembered from now on."""
    if not hashes:
        return set()
    dialect = connection.dialect
    (as_stored,) = bind_processors(dialect, (_seen.c.seen_at,))
    seen_at = as_stored(utcnow())
    if dialect.name == "postgresql":
        # One text for any number of hashes: psycopg parses a statement once only while it
        # has at most 50 parameters, and a multi-row VALUES list has two a hash.
        params = {"hashes": sorted(hashes), "now": seen_at}
        return set(connection.exec_driver_sql(_PG_FIRST_SIGHTINGS, params).scalars())
    values = [value for h in sorted(hashes) for value in (h, seen_at)]
    statement = (
        "INSERT INTO visitor_seen (visitor_hash, seen_at) VALUES "
        + ", ".join("(?, ?)" for _ in hashes)
        + " ON CONFLICT (visitor_hash) DO NOTHING RETURNING visitor_hash"
    )
    return set(connection.exec_driver_sql(statement, tuple(values)).scalars())


_PG_FIRST_SIGHTINGS = (
    "INSERT INTO visitor_seen (visitor_hash, seen_at)"
    " SELECT h, %(now)s FROM unnest(CAST(%(hashes)s AS VARCHAR[])) AS h ORDER BY h"
    " ON CONFLICT (visitor_hash) DO NOTHING RETURNING visitor_hash"
)


def count(
    rows: Iterable[dict[str, Any]], new_hashes: set[str], zone: ZoneInfo
) -> tuple[Counter[Key], Counter[Key]]:
    """Scans and first sightings per rollup key, bots left out."""
    scans: Counter[Key] = Counter()
    visitors: Counter[Key] = Counter()
    pending = set(new_hashes)
    for row in rows:
        if row["is_bot"]:
            continue
        key = key_of(row, zone)
        scans[key] += 1
        if row.get("visitor_hash") in pending:
            visitors[key] += 1
            pending.discard(row["visitor_hash"])
    return scans, visitors


def add(connection: Connection, scans: Counter[Key], visitors: Counter[Key]) -> None:
    """Add the counts to the rollup; keys in one order so concurrent writers cannot deadlock."""
    if not scans:
        return
    processors = bind_processors(connection.dialect, _ADD_COLUMNS)
    values = [
        tuple(
            process(value)
            for process, value in zip(processors, (*key, n, visitors[key]), strict=True)
        )
        for key, n in sorted(scans.items())
    ]
    connection.exec_driver_sql(driver_sql(connection.dialect, _ADD), values)


_ADD_COLUMNS = tuple(_daily.c[name] for name in (*KEY_COLUMNS, "scans", "visitors"))
_ADD = (
    f"INSERT INTO campaign_day_total ({', '.join(c.name for c in _ADD_COLUMNS)})"
    f" VALUES ({', '.join('?' for _ in _ADD_COLUMNS)})"
    f" ON CONFLICT ({', '.join(KEY_COLUMNS)}) DO UPDATE SET"
    " scans = campaign_day_total.scans + excluded.scans,"
    " visitors = campaign_day_total.visitors + excluded.visitors"
)


def scans_inserted(
    connection: Connection, rows: Sequence[dict[str, Any]], ids: Sequence[int]
) -> None:
    """The scan writer's hook: roll the new scans up in their own transaction."""
    human = [row for row in rows if not row["is_bot"]]
    hashes = {row["visitor_hash"] for row in human if row.get("visitor_hash")}
    new = first_sightings(connection, hashes)
    add(connection, *count(human, new, get_settings().zone))


# scans_inserted as CTEs of PostgreSQL's batch statement (app.tracking.scanrows), the same
# counts: a visitor is counted on the first human row of the batch with a hash never seen
# before; keys in one order, so that concurrent batches cannot deadlock.
_PG_KEY = (
    "CAST(b.occurred_at AT TIME ZONE CAST(%(rollup_zone)s AS TEXT) AS DATE),"
    " COALESCE(b.campaign_id, 0), COALESCE(b.placement_id, 0), COALESCE(b.creative_id, 0),"
    " b.channel, b.device_class"
)
_PG_SCANS_INSERTED = (
    "rollup_seen AS (INSERT INTO visitor_seen (visitor_hash, seen_at)"
    " SELECT DISTINCT visitor_hash, CAST(%(rollup_now)s AS TIMESTAMPTZ) FROM batch"
    " WHERE NOT is_bot AND visitor_hash IS NOT NULL ORDER BY visitor_hash"
    " ON CONFLICT (visitor_hash) DO NOTHING RETURNING visitor_hash),"
    " rollup_first AS (SELECT min(b.n) AS n FROM batch b JOIN rollup_seen s"
    " ON s.visitor_hash = b.visitor_hash WHERE NOT b.is_bot GROUP BY b.visitor_hash),"
    f" rollup_add AS (INSERT INTO campaign_day_total ({', '.join(c.name for c in _ADD_COLUMNS)})"
    f" SELECT {_PG_KEY}, count(*), count(f.n) FROM batch b LEFT JOIN rollup_first f ON f.n = b.n"
    " WHERE NOT b.is_bot GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6"
    f" ON CONFLICT ({', '.join(KEY_COLUMNS)}) DO UPDATE SET"
    " scans = campaign_day_total.scans + excluded.scans,"
    " visitors = campaign_day_total.visitors + excluded.visitors)"
)


def _pg_params(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"rollup_zone": get_settings().zone.key, "rollup_now": utcnow()}


SCAN_HOOK = ScanHook(run=scans_inserted, postgresql=_PG_SCANS_INSERTED, params=_pg_params)


def forget_old_sightings(connection: Connection) -> None:
    connection.execute(delete(_seen).where(_seen.c.seen_at < utcnow() - SEEN_FOR))


def rebuild(engine: Engine, zone: ZoneInfo, batch: int = 50_000) -> None:
    """Recompute the rollup from the scan events (after a bulk import, or a zone change).

    Days whose events ``offertrack purge`` already rolled up into ``scan_daily`` and deleted
    cannot be recounted: their rows are kept as they are, or the dashboard would lose its
    history older than the retention period.
    """
    with engine.connect() as connection:
        recount_from = recount_boundary(connection, zone)
    seen: set[str] = set()
    totals: Counter[Key] = Counter()
    firsts: Counter[Key] = Counter()
    with engine.connect() as connection:
        query = select(*_REBUILD_COLUMNS).order_by(_scans.id)
        if recount_from is not None:
            query = query.where(_scans.occurred_at >= recount_from)
        result = connection.execution_options(yield_per=batch).execute(query)
        for row in result.mappings():
            if row["is_bot"]:
                continue
            key = key_of(dict(row), zone)
            totals[key] += 1
            hashed = row["visitor_hash"]
            if hashed and hashed not in seen:
                seen.add(hashed)
                firsts[key] += 1
    with engine.begin() as connection:
        stale = delete(_daily)
        if recount_from is not None:
            stale = stale.where(_daily.c.day >= recount_from.astimezone(zone).date())
        connection.execute(stale)
        keys = sorted(totals)
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            add(
                connection,
                Counter({k: totals[k] for k in chunk}),
                Counter({k: firsts[k] for k in chunk}),
            )


def recount_boundary(connection: Connection, zone: ZoneInfo) -> datetime | None:
    """The first local midnight from which every scan event still exists, or None when no
    day was ever purged.

    Purged days are UTC days (``scan_daily.day``); a local day that began before the end of
    the last of them may have lost events, so the recount starts at the next local midnight.
    """
    last_purged = connection.execute(select(func.max(_scan_daily.day))).scalar()
    if last_purged is None:
        return None
    purged_until = datetime.combine(last_purged + timedelta(days=1), time(), UTC)
    local = purged_until.astimezone(zone)
    first_day = local.date() if local.time() == time() else local.date() + timedelta(days=1)
    return datetime.combine(first_day, time(), zone)
