"""The scan feed's round against the size of the scan table, on SQLite and PostgreSQL.

Every server runs a round every 0.2 s: it derives the scans committed since the last one
(rollups, scan.created events, first-scan alerts). What a round costs must depend on those new
scans only. This bench stores SMALL scans, then times rounds of 1,000 new scans each; then it
grows the table to LARGE scans and times the same rounds again, in the same process. It prints
the median round time for both and their ratio (target: about 1, well under 2). It grew with
the table while a round read it whole on PostgreSQL: 17.7 ms, then 35.6 ms at 200,000 scans
(2.0 times). On PostgreSQL the scans sit in this month's partition with autovacuum off for
it, so without statistics, as every month's partition is at its start: the case where a
round read the whole table.

    .venv/bin/python bench/feed.py [--large 200000] [--rounds 7] [--sqlite-only]

PostgreSQL: OFFERTRACK_BENCH_POSTGRES_URL (its public schema is emptied).
"""

import argparse
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine  # noqa: E402
from sqlmodel import Session  # noqa: E402

import app.models  # noqa: E402, F401  (every table: the offer's foreign keys name staff users)
from app.analytics import scanfeed  # noqa: E402
from app.config import get_settings  # noqa: E402
from app.db import make_engine, utcnow  # noqa: E402
from app.subscribers import wire  # noqa: E402
from app.tracking.partitions import Month  # noqa: E402
from app.tracking.scanrows import insert_scans  # noqa: E402
from bench._servers import PG_URL, postgres_available, scratch_env  # noqa: E402
from tests.factories import make_offer  # noqa: E402

SMALL = 2_000
NEW_PER_ROUND = 1_000
CHUNK = 20_000


def _rows(offer_id: str, count: int, start: int) -> list[dict[str, Any]]:
    now = utcnow()
    return [
        {
            "offer_id": offer_id,
            "occurred_at": now - timedelta(seconds=n % 3600),
            "code_form": "full",
            "channel": "qr",
            "device_class": "mobile",
            "os_family": "iOS",
            "browser_family": "Safari",
            "referrer_host": "",
            "is_bot": False,
            "visitor_hash": f"visitor-{(start + n) % 5000}",
        }
        for n in range(count)
    ]


def _grow(engine: Engine, offer_id: str, total: int) -> None:
    """Store scans until the table holds ``total``, and derive them (the feed's catch-up)."""
    with engine.connect() as connection:
        have: int = connection.exec_driver_sql("SELECT count(*) FROM scan_event").scalar_one()
    while have < total:
        count = min(CHUNK, total - have)
        with engine.begin() as connection:
            insert_scans(connection, _rows(offer_id, count, have))
        have += count
    scanfeed.catch_up(engine, get_settings().zone)


def _rounds(engine: Engine, offer_id: str, rounds: int) -> float:
    """The median seconds of a round that derives NEW_PER_ROUND new scans."""
    times = []
    for n in range(rounds):
        with engine.begin() as connection:
            insert_scans(connection, _rows(offer_id, NEW_PER_ROUND, n * NEW_PER_ROUND))
        started = time.perf_counter()
        derived = scanfeed.catch_up(engine, get_settings().zone)
        times.append(time.perf_counter() - started)
        assert derived == NEW_PER_ROUND, derived
    return statistics.median(times)


def bench(name: str, database_url: str | None, large: int, rounds: int) -> None:
    env = scratch_env(database_url)
    engine = make_engine(env["OFFERTRACK_DATABASE_URL"])
    with Session(engine, expire_on_commit=False) as session:
        offer_id = make_offer(session, get_settings(), issued=True).id
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            month = Month.of(utcnow()).name
            connection.exec_driver_sql(f"ALTER TABLE {month} SET (autovacuum_enabled = off)")
    _grow(engine, offer_id, SMALL)
    _rounds(engine, offer_id, 2)  # warm-up
    small = _rounds(engine, offer_id, rounds)
    _grow(engine, offer_id, large)
    big = _rounds(engine, offer_id, rounds)
    engine.dispose()
    print(f"\n[{name}] a round of {NEW_PER_ROUND:,} new scans, median of {rounds}")
    print(f"  table of ~{SMALL:,} scans   {small * 1000:7.1f} ms")
    print(f"  table of ~{large:,} scans {big * 1000:7.1f} ms")
    print(f"  ratio large/small {big / small:.2f} (target: about 1, well under 2)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    wire()
    bench("SQLite", None, args.large, args.rounds)
    if args.sqlite_only:
        return
    if postgres_available():
        bench("PostgreSQL", PG_URL, args.large, args.rounds)
    else:
        print(f"\n[PostgreSQL] skipped: {PG_URL} not reachable")


if __name__ == "__main__":
    main()
