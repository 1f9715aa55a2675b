"""Campaign analytics at scale, on SQLite and PostgreSQL (when reachable).

1. Loads 1,000,000 scan events (over 120 days, 3% bots, 20% on 5,000 offers, the rest on 24
   campaign codes) and 20,000 conversions into a scratch database, then times each of the
   dashboard's aggregate queries for a 90-day range: the median of 5 runs after a warm-up.
   Target: < 500 ms each.
2. Serves OfferTrack and two bare FastAPI redirect endpoints (``def`` and ``async def``, see
   bench/bare_app.py) the same way (uvicorn, one process) and loads /c/{slug} with wrk (32
   connections, an iPhone user agent): the campaign redirect (routing rules, A/B split, scan
   event committed) against each bare 302. Target: ratio >= 0.5.

    .venv/bin/python bench/analytics.py [--seconds 5] [--rounds 3] [--sqlite-only] [--redirect-only]

PostgreSQL: OFFERTRACK_BENCH_POSTGRES_URL (its public schema is emptied).
"""

import argparse
import hashlib
import random
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine, insert, text  # noqa: E402
from sqlmodel import Session  # noqa: E402

import app.models  # noqa: E402, F401  (every table: the offer's foreign keys name staff users)
from app.analytics import attribution, campaigns, scanfeed  # noqa: E402
from app.analytics.attribution import Period  # noqa: E402
from app.analytics.models import Conversion  # noqa: E402
from app.analytics.schemas import CampaignCreate, CreativeCreate, PlacementCreate  # noqa: E402
from app.db import make_engine  # noqa: E402
from app.offers import ids  # noqa: E402
from app.offers.models import Offer, OfferStatus  # noqa: E402
from bench._servers import (  # noqa: E402
    PG_URL,
    postgres_available,
    scratch_env,
)
from bench.tracking import compare  # noqa: E402

SCANS = 1_000_000
CONVERSIONS = 20_000
OFFERS = 5_000
DAYS = 120
RANGE_DAYS = 90
RUNS = 5
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
SCAN_COLUMNS = (
    "offer_id",
    "occurred_at",
    "code_form",
    "channel",
    "device_class",
    "os_family",
    "browser_family",
    "referrer_host",
    "is_bot",
    "visitor_hash",
    "campaign_id",
    "placement_id",
    "creative_id",
)


class World:
    def __init__(self) -> None:
        self.placements: list[tuple[int, int, list[int]]] = []  # (campaign, placement, creatives)
        self.offers: list[str] = []
        self.slug = ""


def seed(engine: Engine, rng: random.Random, now: datetime) -> World:
    """Campaigns, creatives and placements through the services; offers in bulk."""
    world = World()
    with Session(engine, expire_on_commit=False) as session:
        for c in range(6):
            campaign = campaigns.create_campaign(
                session, CampaignCreate(name=f"Campaign {c}"), actor="bench"
            )
            assert campaign.id is not None
            creatives = [
                campaigns.create_creative(
                    session, campaign.id, CreativeCreate(name=f"C{c}-{k}"), actor="bench"
                ).id
                for k in range(3)
            ]
            for p in range(4):
                placement = campaigns.create_placement(
                    session, campaign.id, _placement(f"Store {c}-{p}", creatives), actor="bench"
                )
                assert placement.id is not None
                world.placements.append((campaign.id, placement.id, [i for i in creatives if i]))
                world.slug = world.slug or placement.slug
        offers = []
        for _ in range(OFFERS):
            offer_id = ids.new_offer_ulid()
            issued = now - timedelta(days=rng.uniform(0, DAYS))
            world.offers.append(offer_id)
            offers.append(
                {
                    "id": offer_id,
                    "tracking_id": ids.tracking_id_of(offer_id),
                    "status": OfferStatus.ISSUED,
                    "customer_company": "Bench GmbH",
                    "customer_contact_name": "",
                    "customer_email": "",
                    "customer_phone": "",
                    "customer_reference": "",
                    "currency": "EUR",
                    "notes": "",
                    "terms": "",
                    "valid_until": (now + timedelta(days=30)).date(),
                    "created_at": issued,
                    "updated_at": issued,
                    "issued_at": issued,
                    "accepted_by_name": "",
                    "accepted_po_number": "",
                    "declined_reason": "",
                    "activated_by": "",
                }
            )
        session.execute(insert(Offer), offers)
        session.commit()
    return world


def _placement(name: str, creatives: list[int | None]) -> PlacementCreate:
    return PlacementCreate.model_validate(
        {
            "name": name,
            "fallback_url": "https://shop.example.com/spring?ref=print",
            "fallback_creative_id": creatives[0],
            "rules": [
                {"when": {"os": ["android"]}, "destinations": [{"url": "https://play.example/x"}]},
                {
                    "when": {"languages": ["fr"]},
                    "destinations": [{"url": "https://shop.example.com/fr"}],
                },
                {
                    "when": {"os": ["ios"]},
                    "destinations": [
                        {
                            "url": "https://shop.example.com/a",
                            "creative_id": creatives[1],
                            "weight": 2,
                        },
                        {
                            "url": "https://shop.example.com/b",
                            "creative_id": creatives[2],
                            "weight": 1,
                        },
                    ],
                },
            ],
        }
    )


def scan_rows(world: World, rng: random.Random, now: datetime) -> Iterator[tuple[Any, ...]]:
    channels = ["qr"] * 6 + ["pdf"] * 2 + ["web", "typed"]
    devices = [("mobile", "iOS"), ("mobile", "Android"), ("desktop", "Windows"), ("tablet", "iOS")]
    # Scans arrive in time order, so rows are stored (and read) in roughly that order.
    offsets = sorted((rng.uniform(0, DAYS * 86_400) for _ in range(SCANS)), reverse=True)
    for offset in offsets:
        at = now - timedelta(seconds=offset)
        bot = rng.random() < 0.03
        campaign_id, placement_id, creatives = rng.choice(world.placements)
        offer_id = None
        if rng.random() < 0.2:
            offer_id = rng.choice(world.offers)
        device, os_family = ("bot", "") if bot else rng.choice(devices)
        visitor = None
        if rng.random() > 0.05:  # 5% DNT
            visitor = hashlib.sha256(f"{at.date()}:{rng.randrange(30_000)}".encode()).hexdigest()
        yield (
            offer_id,
            at,
            "campaign" if offer_id is None else "full",
            rng.choice(channels),
            device,
            os_family,
            "Mobile Safari",
            "",
            bot,
            visitor,
            campaign_id,
            placement_id,
            rng.choice(creatives),
        )


def load_scans(engine: Engine, world: World, rng: random.Random, now: datetime) -> None:
    rows = scan_rows(world, rng, now)
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            columns = ", ".join(SCAN_COLUMNS)
            with cursor.copy(f"COPY scan_event ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            raw.commit()
        finally:
            raw.close()
        return
    placeholders = ", ".join(f":{c}" for c in SCAN_COLUMNS)
    statement = text(f"INSERT INTO scan_event ({', '.join(SCAN_COLUMNS)}) VALUES ({placeholders})")
    batch: list[dict[str, Any]] = []
    for row in rows:
        values = dict(zip(SCAN_COLUMNS, row, strict=True))
        values["occurred_at"] = values["occurred_at"].strftime("%Y-%m-%d %H:%M:%S.%f")
        batch.append(values)
        if len(batch) == 20_000:
            with engine.begin() as connection:  # a commit per batch, as the scan writer does
                connection.execute(statement, batch)
            batch = []
    if batch:
        with engine.begin() as connection:
            connection.execute(statement, batch)


def load_conversions(engine: Engine, world: World, rng: random.Random, now: datetime) -> None:
    rows = []
    for i in range(CONVERSIONS):
        at = now - timedelta(seconds=rng.uniform(0, DAYS * 86_400))
        first = rng.choice(world.placements)
        last = rng.choice(world.placements) if rng.random() < 0.3 else first
        rows.append(
            {
                "external_key": f"bench-{i}",
                "body_hash": "",
                "type": rng.choice(["purchase", "offer_accepted", "order"]),
                "offer_id": rng.choice(world.offers) if rng.random() < 0.3 else None,
                "value": Decimal(rng.randrange(500, 500_000)) / 100,
                "currency": "EUR" if rng.random() < 0.9 else "USD",
                "channel": "pos",
                "occurred_at": at,
                "created_at": at,
                "seconds_to_convert": rng.randrange(60, 20 * 86_400),
                "first_campaign_id": first[0],
                "first_placement_id": first[1],
                "first_creative_id": rng.choice(first[2]),
                "last_campaign_id": last[0],
                "last_placement_id": last[1],
                "last_creative_id": rng.choice(last[2]),
            }
        )
    with engine.begin() as connection:
        connection.execute(insert(Conversion), rows)


def queries(session: Session, period: Period) -> dict[str, Callable[[], object]]:
    return {
        "scans per day": lambda: attribution.scans_per_day(session, period),
        "scans by channel": lambda: attribution.scan_breakdown(session, period, "channel"),
        "scans by device": lambda: attribution.scan_breakdown(session, period, "device"),
        "scans by placement": lambda: attribution.scan_breakdown(session, period, "placement"),
        "scans by creative": lambda: attribution.scan_breakdown(session, period, "creative"),
        "funnel": lambda: attribution.funnel(session, period),
        "attribution campaign first": lambda: attribution.attribution(
            session, period, "campaign", "first_touch"
        ),
        "attribution placement last": lambda: attribution.attribution(
            session, period, "placement", "last_touch"
        ),
        "attribution creative last": lambda: attribution.attribution(
            session, period, "creative", "last_touch"
        ),
        "time to convert": lambda: attribution.time_to_convert(session, period),
    }


def time_queries(engine: Engine, period: Period) -> dict[str, float]:
    times = {}
    with Session(engine) as session:
        for name, run in queries(session, period).items():
            run()  # warm-up
            samples = []
            for _ in range(RUNS):
                started = time.perf_counter()
                run()
                samples.append((time.perf_counter() - started) * 1000)
            times[name] = statistics.median(samples)
    return times


def _driver(env: dict[str, str]) -> str:
    return env["OFFERTRACK_DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1)


def bench_queries(name: str, env: dict[str, str]) -> World:
    engine = make_engine(_driver(env))
    rng = random.Random(20261123)
    now = datetime.now(UTC)
    started = time.perf_counter()
    world = seed(engine, rng, now)
    load_scans(engine, world, rng, now)
    load_conversions(engine, world, rng, now)
    scanfeed.rebuild(engine, ZoneInfo("Europe/Berlin"))  # the scan writer does this as it goes
    with engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        connection.commit()
    print(
        f"\n[{name}] loaded {SCANS:,} scans and {CONVERSIONS:,} conversions in {time.perf_counter() - started:.0f} s"
    )
    zone = ZoneInfo("Europe/Berlin")
    today = now.astimezone(zone).date()
    period = Period(today - timedelta(days=RANGE_DAYS - 1), today, zone)
    times = time_queries(engine, period)
    for query, ms in times.items():
        verdict = "ok" if ms < 500 else "SLOW"
        print(f"  {query:<30} {ms:8.1f} ms  {verdict}")
    print(f"  slowest: {max(times.values()):.1f} ms (target < 500 ms for a {RANGE_DAYS}-day range)")
    engine.dispose()
    return world


def bench_redirect(name: str, env: dict[str, str], slug: str, seconds: int, rounds: int) -> None:
    headers = ["-H", f"User-Agent: {IPHONE}", "-H", "Accept-Language: de-DE,de;q=0.9"]
    print(f"  campaign redirect, {rounds} rounds of {seconds} s each server:")
    compare(env, f"/c/{slug}", "GET /c/{slug}", seconds, rounds, headers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="length of one redirect run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--skip-redirect", action="store_true")
    parser.add_argument("--redirect-only", action="store_true")
    parser.add_argument("--scans", type=int, default=1_000_000, help="for a quick trial run")
    args = parser.parse_args()
    global SCANS
    SCANS = args.scans
    if not shutil.which("wrk") and not args.skip_redirect:
        sys.exit("wrk is needed: apt-get install -y wrk")
    targets: list[tuple[str, str | None]] = [("SQLite", None)]
    if not args.sqlite_only:
        if postgres_available():
            targets.append(("PostgreSQL", PG_URL))
        else:
            print(f"\n[PostgreSQL] skipped: {PG_URL} not reachable")
    for name, url in targets:
        env = scratch_env(url)
        if args.redirect_only:
            print(f"\n[{name}]")
            world = seed(make_engine(_driver(env)), random.Random(1), datetime.now(UTC))
        else:
            world = bench_queries(name, env)
        if not args.skip_redirect:
            bench_redirect(name, env, world.slug, args.seconds, args.rounds)


if __name__ == "__main__":
    main()
