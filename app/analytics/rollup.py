"""The daily rollup of human scans that the dashboard reads (``campaign_day_total``).

Written from committed scan events by id range, one statement for both databases: by the scan
feed for each new range (app.analytics.scanfeed), and by ``recount`` for all of them. Unique
visitors: a visitor hash is counted on its first scan (``visitor_seen`` remembers hashes for 48
hours, as long as their keys live). A hash is daily and belongs to one offer or code, so its
campaign, placement, creative and device are fixed; a visitor who comes back through another
channel the same day counts once, under the channel of the first scan.
"""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, delete, func, select, text
from sqlalchemy.sql.elements import TextClause

from app.analytics.models import CampaignDayTotal, VisitorSeen, table_of
from app.db import UTCDateTime, local_day_sql, utcnow
from app.tracking.models import ScanDaily

KEY_COLUMNS = ("day", "campaign_id", "placement_id", "creative_id", "channel", "device_class")
SEEN_FOR = timedelta(hours=48)
_daily = table_of(CampaignDayTotal)
_seen = table_of(VisitorSeen)
_scan_daily = table_of(ScanDaily).c
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def add_range(connection: Connection, after: int, upto: int, zone: ZoneInfo) -> None:
    """Roll up the scans with ids in (after, upto], then remember their visitors as seen."""
    params = {"after": after, "upto": upto, "since": _EPOCH, "zone": zone.key, "now": utcnow()}
    connection.execute(_rollup(connection.dialect.name, recount=False), params)
    connection.execute(_REMEMBER_VISITORS, params)


def _rollup(dialect: str, *, recount: bool) -> TextClause:
    """Scans and first sightings per key, added to the totals; keys in one order, so that
    concurrent writers cannot deadlock. ``recount`` ignores ``visitor_seen`` (rebuild)."""
    day = local_day_sql(dialect, "s.occurred_at")
    scans = "{s}.id > :after AND {s}.id <= :upto AND {s}.occurred_at >= :since AND NOT {s}.is_bot"
    unseen = (
        ""
        if recount
        else " AND NOT EXISTS (SELECT 1 FROM visitor_seen v WHERE v.visitor_hash = x.visitor_hash)"
    )
    # Each visitor's first scan, as one uncorrelated IN list: both databases build it once
    # (a hash table, an index), where a join on it was a nested loop, quadratic in the range.
    firsts = (
        f"SELECT min(x.id) FROM scan_event x WHERE {scans.format(s='x')}"
        f" AND x.visitor_hash IS NOT NULL{unseen} GROUP BY x.visitor_hash"
    )
    sql = (
        f"INSERT INTO campaign_day_total ({', '.join(KEY_COLUMNS)}, scans, visitors)"
        f" SELECT {day}, COALESCE(s.campaign_id, 0), COALESCE(s.placement_id, 0),"
        " COALESCE(s.creative_id, 0), s.channel, s.device_class, count(*),"
        f" sum(CASE WHEN s.id IN ({firsts}) THEN 1 ELSE 0 END)"
        f" FROM scan_event s WHERE {scans.format(s='s')}"
        " GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6"
        f" ON CONFLICT ({', '.join(KEY_COLUMNS)}) DO UPDATE SET"
        " scans = campaign_day_total.scans + excluded.scans,"
        " visitors = campaign_day_total.visitors + excluded.visitors"
    )
    return text(sql).bindparams(bindparam("since", type_=UTCDateTime))


_REMEMBER_VISITORS = text(
    "INSERT INTO visitor_seen (visitor_hash, seen_at)"
    " SELECT visitor_hash, :now FROM scan_event WHERE id > :after AND id <= :upto"
    " AND NOT is_bot AND visitor_hash IS NOT NULL GROUP BY visitor_hash ORDER BY visitor_hash"
    " ON CONFLICT (visitor_hash) DO NOTHING"
).bindparams(bindparam("now", type_=UTCDateTime))


def forget_old_sightings(connection: Connection) -> None:
    connection.execute(delete(_seen).where(_seen.c.seen_at < utcnow() - SEEN_FOR))


def recount(connection: Connection, zone: ZoneInfo, upto: int) -> None:
    """Recompute the rollup from the scan events up to ``upto`` (the scan feed's mark, which
    the caller holds: see ``app.analytics.scanfeed.rebuild``).

    Days whose events ``offertrack purge`` already rolled up into ``scan_daily`` and deleted
    cannot be recounted: their rows are kept as they are, or the dashboard would lose its
    history older than the retention period.
    """
    recount_from = recount_boundary(connection, zone)
    stale = delete(_daily)
    if recount_from is not None:
        stale = stale.where(_daily.c.day >= recount_from.astimezone(zone).date())
    connection.execute(stale)
    params = {"after": 0, "upto": upto, "since": recount_from or _EPOCH, "zone": zone.key}
    connection.execute(_rollup(connection.dialect.name, recount=True), params)


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
